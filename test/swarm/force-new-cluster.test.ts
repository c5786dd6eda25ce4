/**
 * `swarm init --force-new-cluster` on real daemons: three managers lose two for good; writes fail
 * with a clear "no quorum" error and change nothing; the survivor forces a new cluster from its own
 * state, leads alone, and the services, tasks and containers are all still there.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxTarball, formManagerSwarm, startDaemons, tempDir, TestDaemon, waitFor } from '../daemon/harness.js';

const IMAGE = 'demo/busybox:latest';
const BASE_PORT = 28000 + (process.pid % 500) * 4;
const managers: TestDaemon[] = [];
let scratch: string;
const addr = (i: number) => `127.0.0.1:${BASE_PORT + i}`;

beforeAll(async () => {
  scratch = tempDir('fnc');
  managers.push(...await startDaemons('fnc', 3, addr, await busyboxTarball(scratch), [IMAGE], (i) => `manager${i}`));
  await formManagerSwarm(managers, addr);
}, 120_000);

afterAll(async () => {
  for (const m of managers) {
    if ((await m.cli(['info'])).code === 0) {
      if ((await m.cli(['service', 'rm', 'web'])).code === 0) {
        // let the agent stop and remove the task containers before destroy() removes the rest
        await waitFor('no task containers', async () => ((await m.ok(['container', 'ps', '-a', '-q'])).trim() === '' ? true : undefined), 30_000).catch(() => {});
      }
    }
    // Whatever is left (a removed manager's old tasks: no manager tells it to stop them any more, or
    // a removal still under way) is ended by the pids its shims wrote, with the daemon gone first.
    await m.crash();
    killOrphanContainers(m.dataDir);
    await m.destroy();
  }
  rmSync(scratch, { recursive: true, force: true });
}, 120_000);

/** The lost managers' containers outlived their daemons: killed by the pids their shims recorded. */
function killOrphanContainers(dataDir: string): void {
  const dir = join(dataDir, 'containers');
  if (!existsSync(dir)) return;
  const read = (path: string) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };
  for (const id of readdirSync(dir)) {
    for (const f of ['init.pid', 'shim.pid']) {
      const pid = Number(read(join(dir, id, f)).trim() || 0);
      const cmdline = pid ? read(`/proc/${pid}/cmdline`).replace(/\0/g, ' ') : '';
      // only our own processes: the shim names its container, the init runs the task's command
      if (cmdline.includes(id) || cmdline.startsWith('sleep 3600')) process.kill(pid, 'SIGKILL');
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const target = line.split(' ')[4] ?? '';
    if (target.startsWith(`${dir}/`)) execFileSync('umount', ['-l', target]);
  }
}

const running = async (d: TestDaemon, service: string): Promise<any[]> =>
  JSON.parse(await d.ok(['service', 'ps', '--format', 'json', '-f', 'desired-state=running', service])).filter((t: any) => t.status.state === 'running');

describe('swarm init --force-new-cluster', () => {
  it('is refused on a node that is not a manager of a swarm', async () => {
    const loner = new TestDaemon('fnc-loner');
    await loner.start();
    try {
      const r = await loner.cli(['swarm', 'init', '--force-new-cluster']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/not one/);
    } finally {
      await loner.destroy();
    }
  });

  it('restores service on the last manager after two of three are lost for good', async () => {
    const [survivor, ...lost] = [managers[2]!, managers[0]!, managers[1]!];
    await survivor.ok(['service', 'create', '--name', 'web', '--replicas', '3', IMAGE, 'sleep', '3600']);
    const before = await running(survivor, 'web');
    expect(before).toHaveLength(3);
    const nodeOfSurvivor = JSON.parse(await survivor.ok(['swarm', 'inspect'])).nodeId as string;
    const survivorContainers = before.filter((t) => t.nodeId === nodeOfSurvivor).map((t) => t.status.containerId);

    for (const m of lost) await m.crash();
    // Writes fail with a clear reason, and nothing is half-applied.
    const refused = await survivor.cli(['service', 'scale', '-d', 'web=5'], 60_000);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/no quorum/);
    expect(refused.stderr).not.toMatch(/cannot connect/);
    const create = await survivor.cli(['service', 'create', '-d', '--name', 'other', IMAGE, 'sleep', '1'], 60_000);
    expect(create.stderr).toMatch(/no quorum/);

    const init = await survivor.ok(['swarm', 'init', '--force-new-cluster']);
    expect(init).toMatch(/Swarm initialized/);
    // The same swarm: same node id, the service and its spec unchanged, and the write that failed did not happen.
    expect(JSON.parse(await survivor.ok(['swarm', 'inspect'])).nodeId).toBe(nodeOfSurvivor);
    const svc = JSON.parse(await survivor.ok(['service', 'inspect', 'web']));
    expect([svc].flat()[0].spec.mode.replicated.replicas).toBe(3);
    expect(await survivor.ok(['service', 'ls'])).not.toMatch(/other/);
    // The lost managers are gone from the swarm; this one leads.
    const nodes = await waitFor('the lost managers removed', async () => {
      const ns = JSON.parse(await survivor.ok(['node', 'ls', '--format', 'json']));
      return ns.length === 1 ? ns : undefined;
    }, 30_000);
    expect(nodes[0].id).toBe(nodeOfSurvivor);
    expect(nodes[0].managerStatus.leader).toBe(true);
    // Writes work again, and the tasks of the lost nodes are replaced on the only node left; the
    // survivor's own containers were adopted, not restarted.
    await survivor.ok(['service', 'scale', 'web=4']);
    const after = await waitFor('four tasks running on the survivor', async () => {
      const ts = await running(survivor, 'web');
      return ts.length === 4 && ts.every((t) => t.nodeId === nodeOfSurvivor) ? ts : undefined;
    }, 60_000);
    const ids = after.map((t: any) => t.status.containerId);
    for (const c of survivorContainers) expect(ids).toContain(c);

    // The lost managers come back together: by their own logs they are two of three, a quorum. The
    // survivor refuses them as removed members, so they stop instead of electing each other, say
    // why, and their sessions are refused (they are not registered again).
    for (const m of lost) await m.start();
    for (const m of lost) {
      const r = await waitFor(`${m.name} told it was removed`, async () => {
        const x = await m.cli(['service', 'ls']);
        return /removed from the swarm's raft cluster/.test(x.stderr) ? x : undefined;
      }, 30_000);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const later = JSON.parse(await survivor.ok(['node', 'ls', '--format', 'json']));
    expect(later.map((n: any) => n.id)).toEqual([nodeOfSurvivor]);
    expect(later[0].managerStatus.leader).toBe(true);
    await survivor.ok(['service', 'scale', 'web=3']);
  }, 240_000);
});
