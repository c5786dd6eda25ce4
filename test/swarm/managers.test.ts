/**
 * Three managers over raft, on real daemons: managers join through the leader as learners and are
 * promoted; a service survives the leader being killed with SIGKILL, and the new leader replaces
 * the tasks the dead manager's node ran.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, formManagerSwarm, startDaemons, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const BASE_PORT = 26000 + (process.pid % 500) * 4;
const managers: TestDaemon[] = [];
let scratch: string;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;

beforeAll(async () => {
  scratch = tempDir('managers');
  managers.push(...await startDaemons('mg', 3, addr, await busyboxTarball(scratch), [IMAGE], (i) => `manager${i}`));
  for (const out of await formManagerSwarm(managers, addr)) expect(out).toMatch(/as a manager/);
}, 120_000);

afterAll(async () => {
  for (const m of managers) await m.cli(['service', 'rm', 'web']);
  for (const m of managers) await m.destroy();
  rmSync(scratch, { recursive: true, force: true });
});


const nodesVia = async (d: TestDaemon): Promise<any[]> => JSON.parse(await d.ok(['node', 'ls', '--format', 'json']));

describe('three managers', () => {
  it('replicate the store: every manager lists three reachable managers and one leader', async () => {
    for (const m of managers) {
      const list = await waitFor('three ready, reachable managers', async () => {
        const ns = await nodesVia(m);
        return ns.length === 3 && ns.every((n) => n.status.state === 'ready' && (n.managerStatus.leader || n.managerStatus.reachability === 'reachable')) ? ns : undefined;
      });
      expect(list.filter((n) => n.managerStatus.leader)).toHaveLength(1);
    }
  });

  it('keep serving a service after the leader is killed with SIGKILL', async () => {
    // Created through a follower: its write goes through raft to the leader.
    await managers[1]!.ok(['service', 'create', '--name', 'web', '--replicas', '3', IMAGE, 'sleep', '3600']);
    const leaderIndex = await waitFor('a leader', async () => {
      const ns = await nodesVia(managers[1]!);
      const lead = ns.find((n) => n.managerStatus.leader);
      return lead ? Number(/manager(\d)/.exec(lead.description.hostname)![1]) : undefined;
    });
    const leader = managers[leaderIndex]!;
    const survivors = managers.filter((m) => m !== leader);
    const leaderNodeId = JSON.parse(await leader.ok(['swarm', 'inspect'])).nodeId as string;
    await leader.crash();
    const newLeader = await waitFor('a new leader among the survivors', async () => {
      const ns = await nodesVia(survivors[0]!);
      const lead = ns.find((n) => n.managerStatus.leader && n.id !== leaderNodeId);
      return lead;
    });
    expect(newLeader.id).not.toBe(leaderNodeId);
    // The dead manager's node is marked down and its tasks run elsewhere: three running again.
    const running = await waitFor('three tasks running on the survivors', async () => {
      const ts = JSON.parse(await survivors[0]!.ok(['service', 'ps', '--format', 'json', '-f', 'desired-state=running', 'web']));
      const on = ts.filter((t: any) => t.status.state === 'running').map((t: any) => t.nodeId);
      return on.length === 3 && !on.includes(leaderNodeId) ? on : undefined;
    }, 45_000);
    expect(running).toHaveLength(3);
    // Bring the old leader back: it rejoins as a follower and sees the same service.
    await leader.start();
    await waitFor('the old leader serving the same state', async () => {
      const ls = await leader.ok(['service', 'ls']);
      return /web\s+replicated\s+3\/3/.test(ls) ? true : undefined;
    }, 45_000);
  });
});
