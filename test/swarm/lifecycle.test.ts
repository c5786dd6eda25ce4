/**
 * Service lifecycle on real daemons (one manager, two workers, real containers): rolling updates
 * and their rollback, restart policies, health checks, stop grace and `service logs`.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceClient } from '../../src/rpc/proto.js';
import { CHANNEL_OPTIONS, clientCredentials } from '../../src/ca/tls-credentials.js';
import { writeOciLayout } from '../../testkit/images.js';
import { busyboxTarball, CLI, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const IMAGE2 = 'demo/busybox:v2';
/** An image whose config has a HEALTHCHECK (and a command that makes it pass). */
const HEALTHY_IMAGE = 'demo/healthy:1';
const BASE_PORT = 28000 + (process.pid % 500) * 4;
const daemons: TestDaemon[] = [];
let manager: TestDaemon;
let workers: TestDaemon[];
let scratch: string;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;
const services: string[] = [];

beforeAll(async () => {
  scratch = tempDir('lifecycle');
  const tarball = await busyboxTarball(scratch);
  for (let i = 0; i < 3; i++) {
    const d = new TestDaemon(`lc${i}`, 'tsswarm', ['--listen-addr', addr(i), '--hostname', `lchost${i}`]);
    daemons.push(d);
    await d.start();
    await d.ok(['image', 'import', tarball, IMAGE]);
    await d.ok(['image', 'import', tarball, IMAGE2]);
  }
  const layout = join(scratch, 'healthy-layout');
  writeOciLayout(layout, [{ file: tarball }], {
    tag: HEALTHY_IMAGE,
    config: {
      Env: ['PATH=/bin'], Cmd: ['sh', '-c', 'touch /tmp/ok; exec sleep 3600'],
      Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ok'], Interval: 300_000_000, Retries: 2 },
    },
  });
  for (const d of daemons) await d.ok(['image', 'load', '-i', layout]);
  [manager, ...workers] = daemons as [TestDaemon, ...TestDaemon[]];
  await manager.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', '500ms', '--task-history-limit', '1']);
  const token = (await manager.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
  for (const [i, w] of workers.entries()) await w.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(i + 1), addr(0)]);
  await waitFor('three ready nodes', async () => ((await nodes()).filter((n) => n.status.state === 'ready').length === 3 ? true : undefined), 20_000);
}, 120_000);

afterAll(async () => {
  for (const s of services) await manager?.cli(['service', 'rm', s]);
  for (const d of daemons) await d.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

async function nodes(): Promise<any[]> {
  return JSON.parse(await manager.ok(['node', 'ls', '--format', 'json']));
}

async function tasks(service: string, desired = ''): Promise<any[]> {
  return JSON.parse(await manager.ok(['service', 'ps', '--format', 'json', ...(desired ? ['-f', `desired-state=${desired}`] : []), service]));
}

async function inspect(service: string): Promise<any> {
  return JSON.parse(await manager.ok(['service', 'inspect', service]))[0];
}

async function create(name: string, args: string[]): Promise<string> {
  services.push(name);
  return manager.ok(['service', 'create', '--name', name, ...args]);
}

const up = (t: any) => t.desiredState === 'running' && t.status.state === 'running' && (!t.status.health || t.status.health === 'healthy');

/** Follows the service's tasks through the manager's WatchTasks stream, calling `onSnapshot` on each. */
function watchTasks(service: string, onSnapshot: (tasks: any[]) => void): () => void {
  const Control = serviceClient('control.proto', 'tsswarm.swarm.v1.ControlAPI');
  const client = new Control(`unix:${manager.socket}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
  const call = client.WatchTasks!({ serviceId: service }) as grpc.ClientReadableStream<{ tasks: any[] }>;
  call.on('data', (m: { tasks: any[] }) => onSnapshot(m.tasks));
  call.on('error', () => {});
  return () => { call.cancel(); client.close(); };
}

describe('rolling updates', () => {
  it('updates 6 replicas 2 at a time, start-first, never with fewer than 6 healthy tasks', async () => {
    await create('roll', ['--replicas', '6', '--update-parallelism', '2', '--update-order', 'start-first', '--update-monitor', '1s',
      '--health-cmd', 'test -f /tmp/ready', '--health-interval', '300ms', '--health-retries', '2', '--health-start-period', '20s', '--stop-grace-period', '1s',
      IMAGE, 'sh', '-c', 'sleep 1; touch /tmp/ready; exec sleep 3600']);
    const before = await tasks('roll', 'running');
    expect(before.filter(up)).toHaveLength(6);
    expect(before.every((t) => t.status.health === 'healthy')).toBe(true);

    let min = Infinity;
    let snapshots = 0;
    const maxNewNotUp: number[] = [];
    const stop = watchTasks('roll', (ts) => {
      snapshots++;
      min = Math.min(min, ts.filter(up).length);
      maxNewNotUp.push(ts.filter((t) => t.spec.image === IMAGE2 && t.desiredState === 'running' && !up(t)).length);
    });
    const out = await manager.ok(['service', 'update', '--image', IMAGE2, 'roll']);
    stop();
    expect(out).toMatch(/verify: Service converged/);
    expect(snapshots).toBeGreaterThan(5);
    expect(min).toBeGreaterThanOrEqual(6);
    // Batches of two: never more than two new tasks coming up at once.
    expect(Math.max(...maxNewNotUp)).toBeLessThanOrEqual(2);
    const after = await tasks('roll', 'running');
    expect(after.filter(up).map((t) => t.spec.image)).toEqual(Array(6).fill(IMAGE2));
    const svc = await inspect('roll');
    expect(svc.updateStatus.state).toBe('completed');
    expect(svc.previousSpec.task.image).toBe(IMAGE);
  }, 120_000);

  it('says why an update cannot progress, keeps the old tasks (start-first), and rolls back from there', async () => {
    const before = (await tasks('roll', 'running')).filter(up).map((t) => t.id).sort();
    const r = await manager.cli(['service', 'update', '--reserve-memory', '100000g', 'roll']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^tsswarm: service roll: update cannot progress: waiting for task roll\.\d: no suitable node \(insufficient memory on 3 nodes\)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect((await inspect('roll')).updateStatus.message).toMatch(/waiting for task roll\.\d: no suitable node/);
    expect((await tasks('roll', 'running')).filter(up).map((t) => t.id).sort()).toEqual(before);
    expect(await manager.ok(['service', 'rollback', 'roll'])).toMatch(/rollback: rollback completed/);
    const after = await tasks('roll', 'running');
    expect(after.filter(up).map((t) => t.id).sort()).toEqual(before);
    expect(after.filter((t) => t.status.state === 'pending')).toHaveLength(0);
  }, 60_000);

  it('rolls back automatically when the new version fails, leaving the old one running', async () => {
    await create('fragile', ['--replicas', '3', '--update-failure-action', 'rollback', '--update-monitor', '2s', '--restart-delay', '500ms', '--stop-grace-period', '1s',
      IMAGE, 'sleep', '3600']);
    const oldIds = (await tasks('fragile', 'running')).map((t) => t.id).sort();
    const r = await manager.cli(['service', 'update', '--image', IMAGE2, '--args', 'sh -c "exit 1"', 'fragile']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/rollback: update rolled back due to failure or early termination of task \S+: task: non-zero exit \(1\)/);
    expect(r.stderr).toMatch(/service fragile was rolled back/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const svc = await inspect('fragile');
    expect(svc.updateStatus.state).toBe('rollback_completed');
    expect(svc.spec.task.image).toBe(IMAGE);
    expect(svc.spec.task.args).toEqual(['sleep', '3600']);
    const running = (await tasks('fragile', 'running')).filter(up);
    expect(running).toHaveLength(3);
    expect(running.every((t) => t.spec.image === IMAGE && t.spec.args.join(' ') === 'sleep 3600')).toBe(true);
    // Stop-first with parallelism 1: only the first slot was touched; two old tasks never stopped.
    expect(running.map((t) => t.id).filter((id) => oldIds.includes(id))).toHaveLength(2);
  }, 120_000);

  it('pauses with the reason on failure by default, and service rollback returns to the previous spec', async () => {
    await create('paused', ['--replicas', '2', '--update-monitor', '2s', '--restart-delay', '500ms', '--stop-grace-period', '1s', IMAGE, 'sleep', '3600']);
    const r = await manager.cli(['service', 'update', '--args', 'false', 'paused']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/service paused: update paused due to failure or early termination of task \S+: task: non-zero exit \(1\)/);
    expect((await inspect('paused')).updateStatus.state).toBe('paused');
    const rb = await manager.ok(['service', 'rollback', 'paused']);
    expect(rb).toMatch(/rollback: rollback completed/);
    const svc = await inspect('paused');
    expect(svc.spec.task.args).toEqual(['sleep', '3600']);
    expect((await tasks('paused', 'running')).filter(up)).toHaveLength(2);
  }, 120_000);
});

describe('removal', () => {
  it('removing a service removes its containers on every node, finished tasks\' included', async () => {
    const containersOf = async (prefix: string) => {
      let n = 0;
      for (const d of daemons) n += JSON.parse(await d.ok(['ps', '-a', '--format', 'json'])).filter((c: any) => c.name.startsWith(prefix)).length;
      return n;
    };
    // "fragile" ran failed and shut-down tasks: their containers are history until the service goes.
    expect(await containersOf('fragile.')).toBeGreaterThan(3);
    await manager.ok(['service', 'rm', 'fragile']);
    await waitFor('no container of the removed service', async () => ((await containersOf('fragile.')) === 0 ? true : undefined), 30_000);
  }, 60_000);
});

describe('drain', () => {
  it('a start-first service has its tasks on a drained node replaced before they stop', async () => {
    await create('firm', ['--replicas', '4', '--constraint', 'node.role==worker', '--update-order', 'start-first', '--stop-grace-period', '1s',
      IMAGE, 'sleep', '3600']);
    const ts = (await tasks('firm', 'running')).filter(up);
    const victim = ts[0].nodeId as string;
    const hadThere = ts.filter((t) => t.nodeId === victim).length;
    expect(hadThere).toBeGreaterThan(0);
    let min = Infinity;
    const stop = watchTasks('firm', (snapshot) => { min = Math.min(min, snapshot.filter(up).length); });
    await manager.ok(['node', 'update', '--availability', 'drain', victim]);
    try {
      await waitFor('all four tasks off the drained node', async () => {
        const on = (await tasks('firm', 'running')).filter(up).map((t) => t.nodeId);
        return on.length === 4 && !on.includes(victim) ? true : undefined;
      }, 30_000);
    } finally {
      stop();
      await manager.ok(['node', 'update', '--availability', 'active', victim]);
    }
    expect(min).toBeGreaterThanOrEqual(4);
    // The old tasks stop only after their successors ran (and may still be stopping when they do).
    const old = await waitFor('the old tasks shut down', async () => {
      const o = (await tasks('firm')).filter((t) => t.nodeId === victim);
      return o.every((t) => t.status.state === 'shutdown') ? o : undefined;
    }, 30_000);
    expect(old).toHaveLength(hadThere);
  }, 60_000);
});

/** Waits until the 4 tasks of `service` are up, two on each worker, one per slot. */
async function spreadOverWorkers(service: string): Promise<void> {
  const spread = await waitFor(`two tasks of ${service} on each worker`, async () => {
    const ts = (await tasks(service, 'running')).filter(up);
    const count = (h: string) => ts.filter((t) => nodeName(t.nodeId) === h).length;
    return ts.length === 4 && count('lchost1') === 2 && count('lchost2') === 2 ? ts : undefined;
  }, 30_000);
  expect(new Set(spread.map((t) => t.slot)).size).toBe(4);
}

describe('rebalance', () => {
  it('service update --rebalance spreads tasks onto a node back from drain, never running short', async () => {
    const worker2 = (await nodes()).find((n) => n.description.hostname === 'lchost2')!;
    await manager.ok(['node', 'update', '--availability', 'drain', worker2.id]);
    try {
      await create('bal', ['--replicas', '4', '--constraint', 'node.role==worker', '--stop-grace-period', '1s', IMAGE, 'sleep', '3600']);
      const on = (await tasks('bal', 'running')).map((t) => nodeName(t.nodeId));
      expect(on).toEqual(Array(4).fill('lchost1'));
    } finally {
      await manager.ok(['node', 'update', '--availability', 'active', worker2.id]);
    }
    // Nothing moves by itself when a node comes back.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await tasks('bal', 'running')).map((t) => nodeName(t.nodeId))).toEqual(Array(4).fill('lchost1'));
    let min = Infinity;
    const stop = watchTasks('bal', (ts) => { min = Math.min(min, ts.filter(up).length); });
    try {
      await manager.ok(['service', 'update', '--rebalance', 'bal']);
      await spreadOverWorkers('bal');
    } finally {
      stop();
    }
    expect(min).toBeGreaterThanOrEqual(4);
  }, 60_000);
});

describe('automatic rebalance', () => {
  it('with swarm update --auto-rebalance true, tasks spread by themselves onto a node back from drain, never running short', async () => {
    const bad = await manager.cli(['swarm', 'update', '--auto-rebalance', 'maybe']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toMatch(/auto-rebalance/);
    await manager.ok(['swarm', 'update', '--auto-rebalance', 'true']);
    const worker2 = (await nodes()).find((n) => n.description.hostname === 'lchost2')!;
    let stop = () => {};
    try {
      await manager.ok(['node', 'update', '--availability', 'drain', worker2.id]);
      await create('autobal', ['--replicas', '4', '--constraint', 'node.role==worker', '--stop-grace-period', '1s', IMAGE, 'sleep', '3600']);
      expect((await tasks('autobal', 'running')).map((t) => nodeName(t.nodeId))).toEqual(Array(4).fill('lchost1'));
      let min = Infinity;
      stop = watchTasks('autobal', (ts) => { min = Math.min(min, ts.filter(up).length); });
      await manager.ok(['node', 'update', '--availability', 'active', worker2.id]);
      await spreadOverWorkers('autobal');
      expect(min).toBeGreaterThanOrEqual(4);
    } finally {
      stop();
      await manager.ok(['node', 'update', '--availability', 'active', worker2.id]);
      await manager.ok(['swarm', 'update', '--auto-rebalance', 'false']);
    }
  }, 60_000);
});

describe('restart policy', () => {
  it('restarts a crashing container after the delay, and stops after max attempts; ps shows the history', async () => {
    // Every run is seen through the watch, though the swarm keeps only one finished task per slot.
    const runs = new Map<string, any>();
    const r = await manager.cli(['service', 'create', '--name', 'crash', '--restart-condition', 'on-failure', '--restart-delay', '2s',
      '--restart-max-attempts', '2', '-d', IMAGE, 'sh', '-c', 'exit 3']);
    services.push('crash');
    expect(r.code).toBe(0);
    // Within the 2 s delay of the first run: nothing is trimmed yet when the watch starts.
    const stop = watchTasks('crash', (ts) => { for (const t of ts) if (t.status.state === 'failed') runs.set(t.id, t); });
    try {
      await waitFor('three failed runs', async () => (runs.size === 3 ? true : undefined), 30_000);
      // No fourth run.
      await new Promise((res) => setTimeout(res, 3500));
    } finally {
      stop();
    }
    expect(runs.size).toBe(3);
    const failed = [...runs.values()].sort((a, b) => a.status.timestamp.localeCompare(b.status.timestamp));
    for (const t of failed) expect(t.status.exitCode).toBe(3);
    // Each restart waited for the delay after the previous run ended.
    for (let i = 1; i < failed.length; i++) {
      const gap = Date.parse(failed[i].status.startedAt) - Date.parse(failed[i - 1].status.timestamp);
      expect(gap).toBeGreaterThanOrEqual(2000);
    }
    // swarm init --task-history-limit 1: the last run holds the slot, one finished task is kept below it.
    const ps = await manager.ok(['service', 'ps', '--no-trunc', 'crash']);
    const rows = ps.trim().split('\n').slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^\S+\s+crash\.1\s/);
    expect(rows[1]).toMatch(/^\S+\s+\\_ crash\.1\s/);
    expect(rows.every((l) => /Failed .*"task: non-zero exit \(3\)"/.test(l))).toBe(true);

    // swarm update --task-history-limit 0: the finished task below the slot's last one goes.
    expect(await manager.ok(['swarm', 'update', '--task-history-limit', '0'])).toMatch(/Swarm updated/);
    try {
      await waitFor('no history left', async () => ((await tasks('crash')).length === 1 ? true : undefined), 15_000);
    } finally {
      await manager.ok(['swarm', 'update', '--task-history-limit', '1']);
    }
  }, 60_000);
});

describe('health checks', () => {
  it('replaces a container that turns unhealthy', async () => {
    await create('health', ['--replicas', '1', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '300ms', '--health-retries', '2',
      '--restart-delay', '0s', IMAGE, 'sh', '-c', 'touch /tmp/ok; exec sleep 3600']);
    const [first] = (await tasks('health', 'running')).filter(up);
    expect(first.status.health).toBe('healthy');
    const daemon = daemons.find((d) => d.name === `lc${['lchost0', 'lchost1', 'lchost2'].indexOf(nodeName(first.nodeId))}`)!;
    const name = `health.1.${first.id}`;
    await daemon.ok(['exec', name, 'rm', '/tmp/ok']);
    const replaced = await waitFor('a healthy replacement', async () => {
      const ts = await tasks('health');
      const old = ts.find((t) => t.id === first.id);
      const next = ts.find((t) => t.id !== first.id && up(t) && t.status.health === 'healthy');
      return old?.status.state === 'failed' && next ? { old, next } : undefined;
    }, 30_000);
    expect(replaced.old.status.error).toBe('task: container unhealthy');
    expect(replaced.next.slot).toBe(1);
  }, 60_000);
});

describe('bad input', () => {
  it('is refused in one line naming what is wrong, and the daemon keeps serving', async () => {
    await create('solid', ['--stop-grace-period', '1s', IMAGE, 'sleep', '3600']);
    for (const [args, message] of [
      [['service', 'update', '--update-parallelism', '-1', 'solid'], /--update-parallelism/],
      [['service', 'update', '--update-max-failure-ratio', '2', 'solid'], /--update-max-failure-ratio: expected a number between 0 and 1/],
      [['service', 'update', '--update-failure-action', 'explode', 'solid'], /explode/],
      [['service', 'update', '--update-delay', 'soon', 'solid'], /invalid duration "soon" for --update-delay/],
      [['service', 'update', '--no-healthcheck', '--health-cmd', 'true', 'solid'], /--no-healthcheck conflicts/],
      [['service', 'update', '--limit-memory', '1k', 'solid'], /minimum memory limit is 6 MiB/],
      [['service', 'update', '--image', IMAGE2, 'nosuch'], /service nosuch not found/],
      [['service', 'rollback', 'solid'], /has no previous spec to roll back to/],
      [['service', 'logs', 'nosuch'], /no such service or task: nosuch/],
      [['swarm', 'update', '--task-history-limit', 'x'], /--task-history-limit/],
    ] as const) {
      const r = await manager.cli([...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect((await tasks('solid', 'running')).filter(up)).toHaveLength(1);
  }, 60_000);
});

describe('image health checks', () => {
  it('uses the image\'s HEALTHCHECK, and --no-healthcheck turns it off', async () => {
    await create('imghc', ['--stop-grace-period', '1s', HEALTHY_IMAGE]);
    const [t] = (await tasks('imghc', 'running')).filter(up);
    expect(t.status.health).toBe('healthy');
    await create('nohc', ['--no-healthcheck', '--stop-grace-period', '1s', HEALTHY_IMAGE]);
    const [n] = (await tasks('nohc', 'running')).filter(up);
    expect(n.status.health).toBe('');
    expect((await inspect('nohc')).spec.task.healthcheck.test).toEqual(['NONE']);
  }, 60_000);
});

describe('stop grace', () => {
  it('stops a task with the service\'s stop signal, and kills one that ignores it after the grace period', async () => {
    await create('sig', ['--stop-signal', 'SIGUSR1', '--stop-grace-period', '20s', IMAGE, 'sh', '-c', 'trap "echo got-usr1; exit 0" USR1; while true; do sleep 0.1; done']);
    await create('stubborn', ['--stop-grace-period', '2s', IMAGE, 'sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
    const t0 = Date.now();
    await manager.ok(['service', 'scale', '-d', 'sig=0', 'stubborn=0']);
    const [sig, stubborn] = await waitFor('both tasks shut down', async () => {
      const a = (await tasks('sig')).find((t) => t.status.state === 'shutdown');
      const b = (await tasks('stubborn')).find((t) => t.status.state === 'shutdown');
      return a && b ? [a, b] : undefined;
    }, 30_000);
    // The trap ran: the container exited 0 on SIGUSR1, well before its 20 s grace.
    expect(sig.status.exitCode).toBe(0);
    expect(Date.parse(sig.status.timestamp) - t0).toBeLessThan(15_000);
    expect(await manager.ok(['service', 'logs', 'sig'])).toMatch(/got-usr1/);
    // Ignoring SIGTERM: killed once the 2 s grace ran out.
    expect(stubborn.status.exitCode).toBe(137);
    expect(Date.parse(stubborn.status.timestamp) - t0).toBeGreaterThanOrEqual(2000);
  }, 60_000);
});

describe('service logs', () => {
  const LINE = /^(\S+ )?logs\.(\d)\.([a-z0-9]{12})@(lchost[12])    \| n=(\d)$/;

  it('merges the logs of 3 replicas on 2 workers by time, complete, each line prefixed with task and node', async () => {
    await create('logs', ['--replicas', '3', '--constraint', 'node.role==worker', '--stop-grace-period', '1s', IMAGE,
      'sh', '-c', 'for i in 1 2 3 4 5; do echo n=$i; sleep 0.2; done; exec sleep 3600']);
    const ts = (await tasks('logs', 'running')).filter(up);
    expect(new Set(ts.map((t) => t.nodeId)).size).toBe(2);
    const out = await waitFor('all 15 lines', async () => {
      const o = await manager.ok(['service', 'logs', '--timestamps', 'logs']);
      return o.trim().split('\n').length >= 15 ? o : undefined;
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(15);
    const parsed = lines.map((l) => {
      const m = LINE.exec(l);
      expect(m, l).not.toBeNull();
      return { time: m![1]!.trim(), slot: m![2]!, task: m![3]!, node: m![4]!, n: Number(m![5]) };
    });
    // Complete: every task's five lines, in order, under its own name and node.
    for (const t of ts) {
      const mine = parsed.filter((p) => p.task === t.id.slice(0, 12));
      expect(mine.map((p) => p.n)).toEqual([1, 2, 3, 4, 5]);
      expect(mine.every((p) => p.slot === String(t.slot) && p.node === nodeName(t.nodeId))).toBe(true);
    }
    // Merged by time across the nodes.
    const times = parsed.map((p) => p.time);
    expect([...times].sort()).toEqual(times);

    // One task, and --tail per task.
    const one = (await manager.ok(['service', 'logs', ts[0].id])).trim().split('\n');
    expect(one.map((l) => LINE.exec(l)?.[5])).toEqual(['1', '2', '3', '4', '5']);
    expect((await manager.ok(['service', 'logs', '--tail', '2', 'logs'])).trim().split('\n')).toHaveLength(6);
  }, 60_000);

  it('follows the logs until interrupted', async () => {
    const child = spawn(process.execPath, [CLI, '-H', `unix://${manager.socket}`, 'service', 'logs', '-f', 'logs'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    try {
      await waitFor('15 followed lines', async () => (out.trim().split('\n').length >= 15 ? true : undefined), 20_000);
      // Still following: the containers run on, and a task that starts now is followed too.
      expect(child.exitCode).toBeNull();
      await manager.ok(['service', 'scale', '-d', 'logs=4']);
      await waitFor('the new task\'s five lines', async () => {
        const ids = new Set(out.trim().split('\n').map((l) => LINE.exec(l)?.[3]));
        return ids.size === 4 && out.trim().split('\n').length === 20 ? true : undefined;
      }, 30_000);
    } finally {
      child.kill('SIGKILL');
    }
    expect(out.trim().split('\n').every((l) => LINE.test(l))).toBe(true);
  }, 30_000);

  it('serves task logs to managers only', async () => {
    const certs = join(workers[0]!.dataDir, 'swarm', 'certificates');
    const tls = {
      caPem: readFileSync(join(certs, 'swarm-root-ca.crt'), 'utf8'),
      certPem: readFileSync(join(certs, 'swarm-node.crt'), 'utf8'),
      keyPem: readFileSync(join(certs, 'swarm-node.key'), 'utf8'),
    };
    const TaskLogs = serviceClient('control.proto', 'tsswarm.swarm.v1.TaskLogs');
    const client = new TaskLogs(addr(2), clientCredentials(tls), CHANNEL_OPTIONS) as grpc.Client & Record<string, Function>;
    const err = await new Promise<grpc.ServiceError | undefined>((resolve) => {
      const call = client.Logs!({ taskIds: [], follow: false, tail: -1 }) as grpc.ClientReadableStream<unknown>;
      call.on('error', (e: grpc.ServiceError) => resolve(e));
      call.on('end', () => resolve(undefined));
      call.on('data', () => {});
    });
    client.close();
    expect(err?.code).toBe(grpc.status.PERMISSION_DENIED);
  });
});

let hostnames = new Map<string, string>();
function nodeName(id: string): string {
  return hostnames.get(id) ?? '';
}
beforeAll(async () => {
  hostnames = new Map((await nodes()).map((n) => [n.id, n.description.hostname]));
});
