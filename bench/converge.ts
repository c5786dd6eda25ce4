/**
 * npm run bench:converge — on a one-manager swarm on this machine, the time from `service create
 * --replicas N` to all N tasks running (real containers), for N = 1, 10, 100 and 300; the daemon's
 * RSS with 300 tasks. Then, in the same run, the Docker Swarm anchor (bench/anchor/): Debian's docker.io
 * (installed when missing) in a network namespace of its own, the same image and command, the same sizes
 * (a size is skipped when Docker's rate says it would take over ~100 s); when no Docker engine can be
 * started here it is reported absent with the reason, never a copied number. `ratio_vs_swarm_100` is
 * ours / Docker's seconds at N=100.
 *
 * Then a rolling update of UPDATE_REPLICAS (default 100) replicas, parallelism 10, no delay, a 1 s
 * monitor, stop-first (containers stop on SIGKILL so that no grace period is measured): the time from
 * `service update` to the update completed with every task running the new spec. The same on the Docker
 * engine (bench/anchor/docker-swarm-update.ts: --stop-signal SIGKILL, the image changed to a second tag of
 * the same rootfs); `ratio_vs_swarm_update_100` is ours / Docker's seconds.
 *
 * Env: CONVERGE_SIZES (default "1,10,100,300"), UPDATE_REPLICAS; CONVERGE_DOCKER=off skips the anchor
 * (reported absent). Prints a table and, last, `RESULT {json}`.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../src/cli/client.js';
import { DockerEngine } from './anchor/docker-engine.js';
import { measureSwarmConverge, type SwarmConverge } from './anchor/docker-swarm-converge.js';
import { measureSwarmUpdate, type SwarmUpdate } from './anchor/docker-swarm-update.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO, 'bin', 'tsswarm');
const SIZES = (process.env.CONVERGE_SIZES ?? '1,10,100,300').split(',').map(Number);

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('must run as root');
  const engine = new DockerEngine();
  try {
    await converge(engine);
  } finally {
    await engine.stop(); // idempotent: also when our side failed before the anchor ran
  }
}

async function converge(engine: DockerEngine): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsswarm-bench-converge-'));
  const socket = join(dir, 'tsswarm.sock');
  const port = 27000 + (process.pid % 1000);
  const cg = `tsswarm-bench-conv-${process.pid}`;
  const daemon = spawn(process.execPath, [CLI, 'daemon', '--data-dir', join(dir, 'data'), '--socket', socket, '--cgroup-parent', cg,
    '--listen-addr', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const cli = (...args: string[]) => execFileSync(process.execPath, [CLI, '-H', `unix://${socket}`, ...args], { encoding: 'utf8' });
  const control = new DaemonClient(`unix:${socket}`, 'control');
  const node = new DaemonClient(`unix:${socket}`, 'node');
  const results: Record<string, number> = {};
  let rss300 = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`bench:converge: ${signal}: stopping the daemons this benchmark started`);
    if (daemon.exitCode === null) daemon.kill('SIGTERM');
    void engine.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let update100: number | null = null;
  const updateReplicas = Number(process.env.UPDATE_REPLICAS ?? 100);
  try {
    await until('the daemon socket', async () => existsSync(socket), 15_000);
    execFileSync('bash', [join(REPO, 'scripts', 'busybox-rootfs.sh'), join(dir, 'busybox.tar')]);
    copyFileSync(join(dir, 'busybox.tar'), join(engine.dir, 'busybox.tar')); // the anchor imports the same rootfs
    cli('image', 'import', join(dir, 'busybox.tar'), 'bench/busybox:1');
    cli('swarm', 'init', '--advertise-addr', `127.0.0.1:${port}`);
    for (const n of SIZES) {
      const t0 = performance.now();
      const svc = await control.call('CreateService', { spec: { name: `conv${n}`, task: { image: 'bench/busybox:1', args: ['sleep', '3600'] }, mode: { replicated: { replicas: n } } } });
      await until(`${n} running tasks`, async () => {
        const { tasks } = await control.call('ListTasks', { serviceId: svc.id, desiredState: 'running' });
        return tasks.filter((t: any) => t.status.state === 'running').length === n;
      }, 600_000);
      const seconds = (performance.now() - t0) / 1000;
      results[String(n)] = Math.round(seconds * 1000) / 1000;
      console.log(`tsswarm  N=${String(n).padStart(4)}  ${seconds.toFixed(3)} s  (${(n / seconds).toFixed(1)} tasks/s)`);
      if (n === Math.max(...SIZES)) {
        const info = await node.call('Info', {});
        rss300 = Math.round(info.daemonRssBytes / 1024 / 1024);
      }
      await control.call('RemoveService', { id: svc.id });
      await until('the service\'s containers gone', async () => (await node.call('ContainerList', { all: true })).containers.length === 0, 600_000);
    }
    update100 = await rollingUpdate(control, updateReplicas);
    await until('the updated service\'s containers gone', async () => (await node.call('ContainerList', { all: true })).containers.length === 0, 600_000);
    console.log(`tsswarm  rolling update of ${updateReplicas} (parallelism 10)  ${update100.toFixed(3)} s`);
  } finally {
    control.close();
    node.close();
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    spawnSync('sh', ['-c', `for d in /sys/fs/cgroup/*/${cg}; do rmdir "$d" 2>/dev/null; done`]);
    rmSync(dir, { recursive: true, force: true });
  }
  let swarm: SwarmConverge;
  let swarmUpdate: SwarmUpdate = { seconds: null, failed: null };
  try {
    swarm = process.env.CONVERGE_DOCKER === 'off'
      ? { docker: 'absent: disabled by CONVERGE_DOCKER=off', seconds: {}, skipped: {}, rssAt100: null, version: null }
      : await measureSwarmConverge(engine, SIZES, join(engine.dir, 'busybox.tar'));
    if (swarm.docker === 'measured') swarmUpdate = await measureSwarmUpdate(engine, updateReplicas);
  } finally {
    await engine.stop();
  }
  if (swarm.docker !== 'measured') console.log(`# Docker Swarm: ${swarm.docker}`);
  const ours100 = results['100'];
  const docker100 = swarm.seconds['100'];
  const ratio = (ours?: number, theirs?: number) => (ours && theirs ? Math.round((ours / theirs) * 10000) / 10000 : null);
  const ratios: Record<string, number | null> = {};
  for (const n of Object.keys(swarm.seconds)) ratios[n] = ratio(results[n], swarm.seconds[n]);
  const swarmRss = swarm.rssAt100 && { ...swarm.rssAt100, totalMiB: swarm.rssAt100.dockerdMiB + swarm.rssAt100.containerdMiB };
  const result = {
    tsswarm_seconds: results,
    daemon_rss_mib_at_max: rss300,
    max_tasks: Math.max(...SIZES),
    docker: swarm.docker,
    docker_version: swarm.version,
    swarm_seconds: swarm.docker === 'measured' ? swarm.seconds : null,
    swarm_skipped: swarm.skipped,
    swarm_rss_mib_100: swarmRss,
    ratio_vs_swarm_100: ratio(ours100, docker100),
    ratios_vs_swarm: ratios,
    update_replicas: updateReplicas,
    tsswarm_update_seconds: update100 === null ? null : Math.round(update100 * 1000) / 1000,
    swarm_update_seconds: swarmUpdate.seconds,
    swarm_update_failed: swarmUpdate.failed,
    ratio_vs_swarm_update_100: updateReplicas === 100 ? ratio(update100 ?? undefined, swarmUpdate.seconds ?? undefined) : null,
    tsswarm_tasks_per_s_100: ours100 ? Math.round((100 / ours100) * 10) / 10 : null,
    swarm_tasks_per_s_100: docker100 ? Math.round((100 / docker100) * 10) / 10 : null,
  };
  console.log(`daemon RSS with ${result.max_tasks} tasks: ${rss300} MiB`);
  if (swarmRss) console.log(`Docker at N=100: dockerd ${swarmRss.dockerdMiB} MiB + containerd ${swarmRss.containerdMiB} MiB RSS`);
  if (result.ratio_vs_swarm_100 !== null) console.log(`ratio vs Docker Swarm at N=100: ${result.ratio_vs_swarm_100} (${ours100} s / ${docker100} s)`);
  if (result.ratio_vs_swarm_update_100 !== null) {
    console.log(`ratio vs Docker Swarm, rolling update of 100: ${result.ratio_vs_swarm_update_100} (${result.tsswarm_update_seconds} s / ${swarmUpdate.seconds} s)`);
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** Creates the service, waits for it, then times a rolling update of its task template to completion. */
async function rollingUpdate(control: DaemonClient, replicas: number): Promise<number> {
  const update = { parallelism: 10, delayMs: 0, failureAction: 'pause', monitorMs: 1000, maxFailureRatio: 0, order: 'stop-first' };
  const spec = {
    name: 'upd', task: { image: 'bench/busybox:1', args: ['sleep', '3600'], stopSignal: 'SIGKILL' }, mode: { replicated: { replicas } }, update,
  };
  const svc = await control.call('CreateService', { spec });
  const allRunning = (version: number) => async () => {
    const { tasks } = await control.call('ListTasks', { serviceId: svc.id, desiredState: 'running' });
    return tasks.filter((t: any) => t.status.state === 'running' && t.specVersion >= version).length === replicas;
  };
  await until(`${replicas} running tasks`, allRunning(0), 600_000);
  const current = await control.call('GetService', { id: svc.id });
  const t0 = performance.now();
  const updated = await control.call('UpdateService', {
    id: svc.id, version: current.meta.version, spec: { ...current.spec, task: { ...current.spec.task, args: ['sleep', '3601'] } },
  });
  await until('the rolling update completed', async () => {
    const s = await control.call('GetService', { id: svc.id });
    if (s.updateStatus?.state === 'paused') throw new Error(`the update paused: ${s.updateStatus.message}`);
    return s.updateStatus?.state === 'completed' && (await allRunning(updated.specVersion)());
  }, 600_000);
  const seconds = (performance.now() - t0) / 1000;
  await control.call('RemoveService', { id: svc.id });
  return seconds;
}

main().catch((err) => {
  console.error(`bench:converge: ${(err as Error).message}`);
  process.exit(1);
});
