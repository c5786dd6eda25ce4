/**
 * The cluster-test harness on the real kernel: hosts in network namespaces form a swarm, cuts
 * really drop traffic (one way or both), daemons are killed and restarted by PID, and destroy()
 * and cleanupLeftovers() leave no namespace, process, cgroup or file behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../testkit/fabric.js';
import { cleanupLeftovers, createCluster, IMAGE, type Cluster, type Host } from './harness.js';
import { startHostRegistry } from './registry.js';

let c: Cluster;
let registryPid = 0;

const connects = async (from: Host, to: Host) => (await from.exec('timeout', ['1', 'bash', '-c', `</dev/tcp/${to.ip}/2377`])).code === 0;

beforeAll(async () => {
  c = await createCluster({ hosts: 3, managers: 1, heartbeat: '500ms' });
}, 120_000);

afterAll(async () => {
  await c?.destroy();
});

describe('cluster-test harness', () => {
  it('forms a swarm of daemons in their own namespaces, on their own addresses', async () => {
    const nodes = await c.hosts[0]!.json<any[]>(['node', 'ls']);
    expect(nodes.map((n) => n.description.hostname).sort()).toEqual(['h1', 'h2', 'h3']);
    expect(nodes.map((n) => n.status.addr).sort()).toEqual(c.hosts.map((h) => h.ip).sort());
    // each host sees only its own fabric address (and loopback)
    const addrs = (await c.hosts[1]!.exec('ip', ['-4', '-o', 'addr', 'show'])).stdout;
    expect(addrs).toContain(`${c.hosts[1]!.ip}/24`);
    expect(addrs).not.toContain(c.hosts[0]!.ip);
    expect(c.hosts.every((h) => h.ip.startsWith(`10.231.${c.runId}.`) && h.netns.startsWith(`tswct${c.runId}-`))).toBe(true);
  });

  it('cuts one way, both ways, and heals', async () => {
    const [m, w] = [c.hosts[0]!, c.hosts[1]!];
    expect(await connects(w, m)).toBe(true);
    await c.partition(w, m, { oneWay: true });
    expect(await connects(w, m)).toBe(false);
    // w's packets to m are dropped at m: a TCP connection from m to w cannot complete either
    // (w's answers are w's packets), but w still hears m: m's packets reach w.
    expect(c.cuts()).toEqual([{ at: m.index, from: [w.ip] }]);
    await c.heal();
    expect(await connects(w, m)).toBe(true);
    await c.partition([w], [m, c.hosts[2]!]);
    expect(await connects(m, w)).toBe(false);
    expect(await connects(c.hosts[2]!, w)).toBe(false);
    expect(await connects(c.hosts[2]!, m)).toBe(true);
    await c.heal();
    expect(await connects(m, w)).toBe(true);
  });

  it('kills, stops, continues and restarts a daemon by pid; the node comes back', async () => {
    const w = c.hosts[2]!;
    const pid = w.pid!;
    w.stop();
    expect(await processState(pid, (s) => s === 'T')).toBe('T');
    w.cont();
    expect(await processState(pid, (s) => s !== 'T')).not.toBe('T');
    await w.kill();
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    const restartedAt = Date.now();
    await w.start();
    expect(w.pid).not.toBe(pid);
    // Ready again through a session of the new daemon (the node may still read ready from before).
    await c.waitFor('h3 ready again', async () => {
      const nodes = await c.hosts[0]!.json<any[]>(['node', 'ls']);
      const n = nodes.find((x) => x.description.hostname === 'h3');
      return n?.status.state === 'ready' && Date.parse(n.meta.updatedAt) >= restartedAt ? true : undefined;
    });
  });

  it('runs a registry on a test host that the other hosts reach, and owns it by PID', async () => {
    const reg = await startHostRegistry(c, c.hosts[1]!);
    registryPid = reg.pid;
    expect(reg.addr).toBe(`${c.hosts[1]!.ip}:5000`);
    const answer = await c.hosts[2]!.exec('curl', ['-s', '-m', '2', `http://${reg.addr}/v2/`]);
    expect(answer.stdout.trim()).toBe('{}');
    // the access log counts the answer's body, per client
    await c.waitFor('the access log line', async () => (reg.traffic().byClient[c.hosts[2]!.ip] === 2 ? true : undefined), 5000, 50);
    const rec = JSON.parse(readFileSync(`/run/tswct/${c.runId}.json`, 'utf8'));
    expect(rec.processes).toEqual([{ pid: reg.pid, marker: reg.dir }]);
  });

  it('destroy() removes namespaces, daemons, containers, cgroups and files', async () => {
    await c.hosts[0]!.ok(['service', 'create', '-d', '--name', 'web', '--replicas', '3', IMAGE, 'sleep', '3600']);
    await c.waitFor('three running tasks to destroy', async () => {
      const tasks = await c.hosts[0]!.json<{ status: { state: string } }[]>(['service', 'ps', 'web']);
      return tasks.filter((t) => t.status.state === 'running').length === 3 ? true : undefined;
    }, 45_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}: ${await c.hosts[0]!.ok(['service', 'ps', 'web'])}`);
    });
    const pids = c.hosts.map((h) => h.pid!);
    const { runId, workDir } = c;
    await c.destroy();
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(`tswct${runId}-`))).toEqual([]);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(registryPid).toBeGreaterThan(0);
    expect(existsSync(`/proc/${registryPid}`)).toBe(false);
    expect(existsSync(workDir)).toBe(false);
    for (const ctl of readdirSync('/sys/fs/cgroup')) expect(readdirSync(`/sys/fs/cgroup/${ctl}`).filter((d) => d.startsWith(`tswct${runId}-`))).toEqual([]);
    expect(readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => cmdlineOf(p).includes(workDir))).toBe(false);
  }, 120_000);

  it('cleanupLeftovers() removes what a dead harness left, and kills its processes by PID only while their command line names them', async () => {
    // A run whose owner is gone: a record naming a dead pid, its namespace, and two processes it
    // recorded: one still its own, one whose pid (as if recycled) now runs something else.
    const runId = 251;
    await run('ip', ['netns', 'add', `tswct${runId}-fab`]);
    // `read` is a builtin: no child to orphan; the open stdin pipe keeps it waiting, and its end ends it.
    const waiter = (name: string) => spawn('bash', ['-c', 'read -r _', name], { stdio: ['pipe', 'ignore', 'ignore'] });
    const ours = waiter('tswct-251-registry');
    const stranger = waiter('not-ours');
    const processes = [{ pid: ours.pid!, marker: 'tswct-251-registry' }, { pid: stranger.pid!, marker: 'tswct-251-other' }];
    mkdirSync('/run/tswct', { recursive: true });
    writeFileSync(`/run/tswct/${runId}.json`, JSON.stringify({ runId, ownerPid: 2 ** 22 + 1, workDir: `/var/tmp/tswct/${runId}`, hosts: [], processes }));
    try {
      const cleaned = await cleanupLeftovers();
      expect(cleaned).toContain(runId);
      expect(readdirSync('/run/netns')).not.toContain(`tswct${runId}-fab`);
      expect(existsSync(`/run/tswct/${runId}.json`)).toBe(false);
      await c.waitFor('the recorded process to be reaped', async () => (ours.signalCode ?? undefined), 5000, 20);
      expect(ours.signalCode).toBe('SIGKILL');
      expect(stranger.exitCode === null && stranger.signalCode === null).toBe(true);
    } finally {
      stranger.stdin!.end();
      ours.stdin!.end();
    }
  });
});

const readOr = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};
const cmdlineOf = (pid: string) => readOr(`/proc/${pid}/cmdline`);

/** The process's state letter (R, S, T, ...), polled until `until` holds or a second passed. */
async function processState(pid: number, until: (state: string) => boolean): Promise<string> {
  let state = '';
  for (let i = 0; i < 50; i++) {
    state = /^\d+ \(.*\) (\w)/.exec(readOr(`/proc/${pid}/stat`))?.[1] ?? '';
    if (until(state)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return state;
}
