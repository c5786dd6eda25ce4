/**
 * `node promote` and `node demote` on real daemons: workers become raft members and back, even the
 * leader steps down and leaves raft, and the swarm keeps scheduling throughout.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const BASE_PORT = 29000 + (process.pid % 500) * 4;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;
const nodes: TestDaemon[] = [];
let scratch: string;

beforeAll(async () => {
  scratch = tempDir('roles');
  const tarball = await busyboxTarball(scratch);
  for (let i = 0; i < 3; i++) {
    const d = new TestDaemon(`ro${i}`, 'tsswarm', ['--listen-addr', addr(i), '--hostname', `role${i}`]);
    nodes.push(d);
    await d.start();
    await d.ok(['image', 'import', tarball, IMAGE]);
  }
  await nodes[0]!.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', '500ms']);
  const token = (await nodes[0]!.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
  for (let i = 1; i < 3; i++) await nodes[i]!.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(i), addr(0)]);
}, 120_000);

afterAll(async () => {
  for (const d of nodes) if ((await d.cli(['service', 'rm', 'web'])).code === 0) break;
  for (const d of nodes) await d.destroy();
  rmSync(scratch, { recursive: true, force: true });
});


const role = async (d: TestDaemon) => JSON.parse(await d.ok(['swarm', 'inspect'])).role as string;

describe('promote and demote', () => {
  it('promotes two workers to managers that serve the control API', async () => {
    expect(await nodes[0]!.ok(['node', 'promote', 'role1', 'role2'])).toMatch(/role2 promoted to a manager/);
    for (const d of nodes.slice(1)) {
      await waitFor('the node to become a manager', async () => ((await role(d)) === 'manager' ? true : undefined));
      const list = await waitFor('node ls on the promoted node', async () => JSON.parse(await d.ok(['node', 'ls', '--format', 'json'])));
      expect(list.filter((n: any) => n.managerStatus?.raftId)).toHaveLength(3);
    }
  });

  it('demotes the leader, which hands over leadership and leaves raft; services still converge', async () => {
    expect(await nodes[1]!.ok(['node', 'demote', 'role0'])).toMatch(/role0 demoted to a worker/);
    await waitFor('role0 a worker', async () => ((await role(nodes[0]!)) === 'worker' ? true : undefined));
    const list = await waitFor('two managers, one leader, all ready', async () => {
      const ns = JSON.parse(await nodes[1]!.ok(['node', 'ls', '--format', 'json']));
      const managers = ns.filter((n: any) => n.managerStatus?.raftId);
      return managers.length === 2 && managers.some((n: any) => n.managerStatus.leader) && ns.every((n: any) => n.status.state === 'ready') ? ns : undefined;
    });
    expect(list.find((n: any) => n.description.hostname === 'role0').managerStatus).toBeFalsy();
    expect((await nodes[0]!.cli(['node', 'ls'])).stderr).toMatch(/not a swarm manager/);
    const out = await nodes[2]!.ok(['service', 'create', '--name', 'web', '--replicas', '3', IMAGE, 'sleep', '3600']);
    expect(out).toMatch(/verify: Service converged/);
    // From two managers to one: the demoted node leaves raft only after the removal committed.
    await nodes[2]!.ok(['node', 'demote', 'role1']);
    await waitFor('role1 a worker', async () => ((await role(nodes[1]!)) === 'worker' ? true : undefined));
    await waitFor('one manager left, serving', async () => {
      const ns = JSON.parse(await nodes[2]!.ok(['node', 'ls', '--format', 'json']));
      return ns.filter((n: any) => n.managerStatus?.raftId).length === 1 ? true : undefined;
    });
    const last = await nodes[2]!.cli(['node', 'demote', 'role2']);
    expect(last.code).not.toBe(0);
    expect(last.stderr).toMatch(/last manager/);
  }, 90_000);
});
