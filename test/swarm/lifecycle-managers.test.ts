/**
 * A rolling update survives its leader: three managers on real daemons; the leader is killed with
 * SIGKILL in the middle of an update, and the new leader finishes it from the state in the store.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, formManagerSwarm, startDaemons, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const IMAGE2 = 'demo/busybox:v2';
const BASE_PORT = 30000 + (process.pid % 500) * 4;
const managers: TestDaemon[] = [];
let scratch: string;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;

beforeAll(async () => {
  scratch = tempDir('lifecycle-managers');
  managers.push(...await startDaemons('lm', 3, addr, await busyboxTarball(scratch), [IMAGE, IMAGE2], (i) => `lmanager${i}`));
  await formManagerSwarm(managers, addr);
  await waitFor('three ready, reachable managers', async () => {
    const ns = JSON.parse(await managers[0]!.ok(['node', 'ls', '--format', 'json']));
    return ns.length === 3 && ns.every((n: any) => n.status.state === 'ready' && (n.managerStatus.leader || n.managerStatus.reachability === 'reachable')) ? true : undefined;
  }, 30_000);
}, 120_000);

afterAll(async () => {
  for (const m of managers) await m.cli(['service', 'rm', 'web']);
  for (const m of managers) await m.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

const json = async (d: TestDaemon, args: string[]) => JSON.parse(await d.ok([...args, '--format', 'json']));

describe('a rolling update and a leader change', () => {
  it('is finished by the new leader when the leader is killed mid-update', async () => {
    await managers[1]!.ok(['service', 'create', '--name', 'web', '--replicas', '6', '--update-parallelism', '1', '--update-delay', '1s',
      '--update-monitor', '1s', '--stop-grace-period', '1s', IMAGE, 'sleep', '3600']);
    await managers[1]!.ok(['service', 'update', '-d', '--image', IMAGE2, 'web']);
    // Mid-update: some slots done, not all.
    await waitFor('the update under way', async () => {
      const ts = await json(managers[1]!, ['service', 'ps', '-f', 'desired-state=running', 'web']);
      const updated = ts.filter((t: any) => t.spec.image === IMAGE2 && t.status.state === 'running').length;
      return updated >= 1 && updated < 4 ? true : undefined;
    }, 45_000);
    const nodes = await json(managers[1]!, ['node', 'ls']);
    const lead = nodes.find((n: any) => n.managerStatus.leader);
    const leader = managers[Number(/lmanager(\d)/.exec(lead.description.hostname)![1])]!;
    const survivor = managers.find((m) => m !== leader)!;
    expect(JSON.parse(await leader.ok(['service', 'inspect', 'web']))[0].updateStatus.state).toBe('updating');
    await leader.crash();
    try {
      const done = await waitFor('the update completed by the new leader', async () => {
        const svc = JSON.parse(await survivor.ok(['service', 'inspect', 'web']))[0];
        if (svc.updateStatus?.state !== 'completed') return undefined;
        const ts = await json(survivor, ['service', 'ps', '-f', 'desired-state=running', 'web']);
        const running = ts.filter((t: any) => t.status.state === 'running');
        return running.length === 6 ? running : undefined;
      }, 90_000);
      expect(done.every((t: any) => t.spec.image === IMAGE2)).toBe(true);
      expect(done.some((t: any) => t.nodeId === lead.id)).toBe(false);
    } finally {
      await leader.start();
    }
  }, 180_000);
});
