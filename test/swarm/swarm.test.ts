/**
 * A real swarm on one machine: three daemons (one manager, two workers) talking mutual TLS on
 * loopback, running real containers. Covers issue 5's single-manager path; multi-manager raft
 * failover is tested in src/raft and comes here once managers can join.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { serviceClient } from '../../src/rpc/proto.js';
import { CHANNEL_OPTIONS, clientCredentials } from '../../src/ca/tls-credentials.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const BASE_PORT = 24000 + (process.pid % 500) * 4;
const daemons: TestDaemon[] = [];
let manager: TestDaemon;
let workers: TestDaemon[];
let scratch: string;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;

beforeAll(async () => {
  scratch = tempDir('swarm');
  const tarball = await busyboxTarball(scratch);
  for (let i = 0; i < 3; i++) {
    const d = new TestDaemon(`sw${i}`, 'tsswarm', ['--listen-addr', addr(i), '--hostname', `host${i}`]);
    daemons.push(d);
    await d.start();
    await d.ok(['image', 'import', tarball, IMAGE]);
  }
  [manager, ...workers] = daemons as [TestDaemon, ...TestDaemon[]];
  await manager.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', '500ms']);
  const token = (await manager.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
  for (const [i, w] of workers.entries()) await w.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(i + 1), addr(0)]);
  await waitFor('three ready nodes', async () => ((await nodes()).filter((n) => n.status.state === 'ready').length === 3 ? true : undefined), 20_000);
}, 120_000);

afterAll(async () => {
  await manager?.cli(['service', 'rm', 'web']);
  for (const d of daemons) await d.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

async function nodes(): Promise<any[]> {
  return JSON.parse(await manager.ok(['node', 'ls', '--format', 'json']));
}

async function tasks(service: string, desired = 'running'): Promise<any[]> {
  return JSON.parse(await manager.ok(['service', 'ps', '--format', 'json', '-f', `desired-state=${desired}`, service]));
}


const runningOn = (ts: any[]) => ts.filter((t) => t.status.state === 'running').map((t) => t.nodeId as string);

describe('a swarm of three daemons', () => {
  it('refuses a wrong token and a token for another swarm, in one line', async () => {
    const stranger = new TestDaemon('sw-stranger', 'tsswarm', ['--listen-addr', addr(3)]);
    daemons.push(stranger);
    await stranger.start();
    const real = (await manager.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
    const forged = real.replace(/-[0-9a-z]{25}$/, `-${'a'.repeat(25)}`);
    const r = await stranger.cli(['swarm', 'join', '--token', forged, addr(0)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/invalid join token/);
    const otherSwarm = real.replace(/^SWMTKN-1-[0-9a-z]{50}/, `SWMTKN-1-${'1'.repeat(50)}`);
    const r2 = await stranger.cli(['swarm', 'join', '--token', otherSwarm, addr(0)]);
    expect(r2.stderr).toMatch(/does not match the join token/);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a worker\'s certificate on the managers\' raft service', async () => {
    const certs = join(workers[0]!.dataDir, 'swarm', 'certificates');
    const tls = {
      caPem: readFileSync(join(certs, 'swarm-root-ca.crt'), 'utf8'),
      certPem: readFileSync(join(certs, 'swarm-node.crt'), 'utf8'),
      keyPem: readFileSync(join(certs, 'swarm-node.key'), 'utf8'),
    };
    const Raft = serviceClient('raft.proto', 'tsswarm.raft.Raft');
    const client = new Raft(addr(0), clientCredentials(tls), CHANNEL_OPTIONS) as grpc.Client & Record<string, Function>;
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const stream = client.Stream!((e: grpc.ServiceError | null) => resolve(e));
      stream.end();
    });
    client.close();
    expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err?.details).toMatch(/is for managers; node \S+ is a worker/);
  });

  it('lists the nodes with the manager as leader', async () => {
    const list = await nodes();
    expect(list).toHaveLength(3);
    expect(list.filter((n) => n.managerStatus?.leader)).toHaveLength(1);
    expect(list.filter((n) => n.spec.role === 'worker')).toHaveLength(2);
  });

  it('creates a 3-replica service spread over the nodes, with real containers', async () => {
    const out = await manager.ok(['service', 'create', '--name', 'web', '--replicas', '3', IMAGE, 'sleep', '3600']);
    expect(out).toMatch(/verify: Service converged/);
    const ts = await tasks('web');
    expect(runningOn(ts)).toHaveLength(3);
    expect(new Set(runningOn(ts)).size).toBe(3);
    // Each worker really runs its task's container.
    for (const w of workers) {
      const ps = JSON.parse(await w.ok(['ps', '--format', 'json']));
      expect(ps.filter((c: any) => c.name.startsWith('web.'))).toHaveLength(1);
    }
  });

  it('scales to 7 and back to 2', async () => {
    await manager.ok(['service', 'scale', 'web=7']);
    expect(runningOn(await tasks('web'))).toHaveLength(7);
    await manager.ok(['service', 'scale', 'web=2']);
    await waitFor('two running tasks', async () => (runningOn(await tasks('web')).length === 2 ? true : undefined));
    const ls = await manager.ok(['service', 'ls']);
    expect(ls).toMatch(/web\s+replicated\s+2\/2/);
  });

  it('moves tasks off a drained node', async () => {
    await manager.ok(['service', 'scale', 'web=3']);
    const on = runningOn(await tasks('web'));
    const victim = (await nodes()).find((n) => n.spec.role === 'worker' && on.includes(n.id))!;
    expect(victim).toBeDefined();
    await manager.ok(['node', 'update', '--availability', 'drain', victim.id]);
    await waitFor('no task on the drained node and 3 running', async () => {
      const on = runningOn(await tasks('web'));
      return on.length === 3 && !on.includes(victim.id) ? true : undefined;
    });
    await manager.ok(['node', 'update', '--availability', 'active', victim.id]);
  });

  it('replaces the tasks of a worker that dies', async () => {
    const before = await tasks('web');
    const victimDaemon = workers[1]!;
    const victimId = JSON.parse(await victimDaemon.ok(['swarm', 'inspect'])).nodeId as string;
    await manager.ok(['service', 'scale', 'web=4']);
    const hadTasks = runningOn(await tasks('web')).filter((n) => n === victimId).length;
    expect(hadTasks).toBeGreaterThan(0);
    await victimDaemon.crash();
    await waitFor('the dead worker marked down', async () => ((await nodes()).find((n) => n.id === victimId)?.status.state === 'down' ? true : undefined));
    const after = await waitFor('4 tasks running elsewhere', async () => {
      const on = runningOn(await tasks('web'));
      return on.length === 4 && !on.includes(victimId) ? on : undefined;
    });
    expect(after).toHaveLength(4);
    expect(before.length).toBeGreaterThan(0);
    // Bring it back so teardown can clean its containers.
    await victimDaemon.start();
  });

  it('rejects bad service input in one line and keeps running', async () => {
    for (const [args, message] of [
      [['service', 'create', '--name', 'bad', '--replicas', '-1', IMAGE], /--replicas/],
      [['service', 'create', '--name', 'bad', '--constraint', 'node.role=manager', IMAGE], /invalid constraint/],
      [['service', 'create', '--name', 'web', IMAGE], /already in use/],
      [['service', 'create', '--name', 'bad', '--limit-memory', 'lots', IMAGE], /invalid value "lots"/],
      [['service', 'scale', 'nosuch=3'], /not found/],
    ] as const) {
      const r = await manager.cli([...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(runningOn(await tasks('web')).length).toBeGreaterThan(0);
  });

  it('says why a service cannot converge', async () => {
    const r = await manager.cli(['service', 'create', '--name', 'huge', '--reserve-memory', '100000g', IMAGE, 'true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/could not converge: 1\/1: no suitable node \(insufficient memory on 3 nodes\)/);
    const ps = await manager.ok(['service', 'ps', '--no-trunc', 'huge']);
    expect(ps).toMatch(/insufficient memory on 3 nodes/);
    await manager.ok(['service', 'rm', 'huge']);
  }, 60_000);
});

describe('restarts', () => {
  it('a manager killed with SIGKILL comes back with the same services and tasks, still running', async () => {
    const before = (await tasks('web')).filter((t) => t.status.state === 'running').map((t) => t.id).sort();
    expect(before.length).toBeGreaterThan(0);
    await manager.crash();
    await manager.start();
    const after = await waitFor('the manager serving again with the same tasks', async () => {
      const r = await manager.cli(['service', 'ps', '--format', 'json', '-f', 'desired-state=running', 'web']);
      if (r.code !== 0) return undefined;
      const ids = JSON.parse(r.stdout).filter((t: any) => t.status.state === 'running').map((t: any) => t.id).sort();
      return ids.length === before.length ? ids : undefined;
    });
    expect(after).toEqual(before);
  });
});
