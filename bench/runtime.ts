/**
 * npm run bench:runtime — /bin/true in one busybox bundle under tsswarm-runtime, crun and runc,
 * interleaved in random order, in the same run; plus the RSS of one idle tsswarm-shim.
 *
 * crun 1.8 refuses this host's hybrid cgroup layout, so the whole benchmark re-execs itself under
 * `unshare -m` and replaces /sys/fs/cgroup, in that private mount namespace only, by a tmpfs holding
 * the v1 hierarchies: every runtime then sees the same v1-only view, which keeps the comparison fair.
 *
 * Every runtime runs the same bundle, with Docker's default seccomp profile as the engine writes it
 * (each compiles it to BPF its own way: libseccomp for crun and runc, seccomp.c for ours).
 *
 * Env: RUNTIME_BENCH_RUNS (default 60, at least 50 is what the issue asks for).
 * Prints a table and, last, `RESULT {json}`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultSeccomp } from '../src/engine/runtime/seccomp.js';
import { baseSpec, makeRootfs, pidAlive, RUNTIME, SHIM, shDetached, tempDir, umountAll, waitFor, writeBundle } from '../test/runtime/helpers.js';

const RUNS = Math.max(1, Number(process.env.RUNTIME_BENCH_RUNS ?? 60));
const WARMUP = 3;
const IN_NS = 'TSSWARM_RUNTIME_BENCH_IN_NS';

interface Stats { p50: number; p95: number; min: number; mean: number; runs: number }

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { p50: r(q(0.5)), p95: r(q(0.95)), min: r(s[0]!), mean: r(s.reduce((a, b) => a + b, 0) / s.length), runs: s.length };
}

function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** In our private mount namespace: /sys/fs/cgroup becomes a tmpfs with the v1 hierarchies only. */
function hideCgroup2(): void {
  const script = `
    set -e
    T=$(mktemp -d /tmp/tsswarm-cgv1.XXXXXX)
    mount -t tmpfs -o mode=755 cgv1 "$T"
    for m in $(awk '$9=="cgroup" && $5 ~ "^/sys/fs/cgroup/" {print $5}' /proc/self/mountinfo); do
      mkdir -p "$T/\${m#/sys/fs/cgroup/}" && mount --bind "$m" "$T/\${m#/sys/fs/cgroup/}"
    done
    mount --move "$T" /sys/fs/cgroup
    rmdir "$T"`;
  execFileSync('sh', ['-c', script], { stdio: 'inherit' });
}

function timeRun(cmd: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.toString().trim()}`);
  return ms;
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** VmRSS and its private (anonymous) part, in kB, of one idle shim holding a `sleep 3600` container. */
async function idleShimRss(work: string, rootfs: string, stateRoot: string): Promise<{ rss: number; anon: number }> {
  const id = `tsswarm-bench-shim-${process.pid}`;
  const base = join(work, 'shim');
  const s = baseSpec(join(base, 'merged'), ['/bin/sleep', '3600']);
  s.root.readonly = false;
  s.linux.cgroupsPath = `/tsswarm-bench-${process.pid}/${id}`;
  writeBundle(join(base, 'bundle'), s);
  const state = join(base, 'state');
  const r = shDetached(SHIM, ['--runtime', RUNTIME, '--runtime-arg', '--root', '--runtime-arg', stateRoot, '--id', id,
    '--bundle', join(base, 'bundle'), '--state-dir', state, '--log', join(state, 'ctr.log'),
    '--lower', rootfs, '--upper', join(base, 'upper'), '--work', join(base, 'work')], work);
  if (r.status !== 0) throw new Error(`shim failed: ${r.stderr.trim()}`);
  const shimPid = Number(readFileSync(join(state, 'shim.pid'), 'utf8'));
  await new Promise((res) => setTimeout(res, 300)); // let it settle into its poll loop
  const status = readFileSync(`/proc/${shimPid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  const anon = Number(/RssAnon:\s+(\d+)/.exec(status)![1]);
  spawnSync(RUNTIME, ['--root', stateRoot, 'kill', id, 'KILL']);
  await waitFor(() => existsSync(join(state, 'exit.json')) && !pidAlive(shimPid), 5000);
  return { rss, anon };
}

/** Caller-side time of `tsswarm-shim ... ` until it returns (container running), overlay included. */
async function shimStart(work: string, rootfs: string, stateRoot: string, runs: number): Promise<Stats> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const id = `tsswarm-bench-start-${process.pid}-${i}`;
    const base = join(work, 'start', String(i));
    const s = baseSpec('merged', ['/bin/true']);
    s.root.readonly = false;
    s.linux.cgroupsPath = `/tsswarm-bench-${process.pid}/${id}`;
    writeBundle(join(base, 'bundle'), s);
    const state = join(base, 'state');
    const argv = [SHIM, '--runtime', RUNTIME, '--runtime-arg', '--root', '--runtime-arg', stateRoot, '--id', id,
      '--bundle', join(base, 'bundle'), '--state-dir', state, '--log', join(state, 'log'),
      '--lower', rootfs, '--upper', join(base, 'upper'), '--work', join(base, 'work')];
    xs.push(timeRun(argv));
    await waitFor(() => existsSync(join(state, 'exit.json')), 5000);
  }
  return stats(xs);
}

/**
 * The cost tsswarm-runtime avoids: a process moved into a v1 cgroup by a cgroup.procs write waits for
 * an RCU grace period when the cgroup core has been quiet; a single thread moving *itself* through
 * "tasks" (what our init does) skips that lock. Same shell, same cgroup, 150 ms apart (cold).
 */
function cgroupMoveCost(cgParent: string): { procs_ms: number; tasks_self_ms: number } | null {
  const dir = `/sys/fs/cgroup/pids${cgParent}/move`;
  try {
    execFileSync('mkdir', ['-p', dir]);
  } catch {
    return null;
  }
  const sample = (script: string) => {
    const xs: number[] = [];
    for (let i = 0; i < 10; i++) {
      spawnSync('sleep', ['0.15']);
      xs.push(timeRun(['sh', '-c', script]));
    }
    return stats(xs).p50;
  };
  const r = { procs_ms: sample(`echo $$ > ${dir}/cgroup.procs`), tasks_self_ms: sample(`echo 0 > ${dir}/tasks`) };
  spawnSync('rmdir', [dir]);
  return r;
}

// ---------------------------------------------------------------------------------------------
// DAEMON END-TO-END (to be added by the daemon author): `tsswarm container run --rm IMAGE true`
// through a running daemon. Pass a function to runtimeBench({ daemonRunRm }) that returns one
// wall-clock time in ms per call (and optionally the daemon's RSS in kB via daemonRssKb); its
// p50/p95 and ratio vs crun then go into the table and the RESULT line.
// ---------------------------------------------------------------------------------------------
export interface DaemonHooks {
  /** `tsswarm container run --rm` as a user's shell runs it: bin/tsswarm, which hands it to the native front. */
  daemonRunRm?: () => Promise<number>;
  /** The same command through the Node CLI, for comparison. */
  daemonRunRmNode?: () => Promise<number>;
  /** The same through the daemon's API from a warm client: the daemon's own share of the CLI time. */
  daemonApiRunRm?: () => Promise<number>;
  daemonRssKb?: () => Promise<number>;
}

export async function runtimeBench(hooks: DaemonHooks = {}): Promise<Record<string, unknown>> {
  const work = tempDir('tsswarm-bench-rt-');
  // on tmpfs under /run, like runc's and crun's state dirs
  const stateRoot = `/run/tsswarm-bench-${process.pid}`;
  execFileSync('chmod', ['755', work]);
  const cgParent = `/tsswarm-bench-${process.pid}`;
  try {
    const rootfs = makeRootfs(work);
    const spec = baseSpec(rootfs, ['/bin/true']);
    spec.linux.cgroupsPath = `${cgParent}/true`;
    spec.linux.seccomp = defaultSeccomp(spec.process.capabilities.bounding);
    const bundle = writeBundle(join(work, 'bundle'), spec);

    const runtimes: Array<{ name: string; cmd: string[] }> = [
      { name: 'tsswarm', cmd: [RUNTIME, '--root', stateRoot, 'run', '--bundle', bundle, `tsswarm-bench-${process.pid}`] },
    ];
    for (const name of ['crun', 'runc']) {
      const bin = which(name);
      if (bin) runtimes.push({ name, cmd: [bin, 'run', '--bundle', bundle, `tsswarm-bench-${name}-${process.pid}`] });
      else console.error(`# ${name} not installed: skipped (scripts/setup.sh installs it)`);
    }
    const times = new Map<string, number[]>(runtimes.map((r) => [r.name, []]));
    for (const r of runtimes) for (let i = 0; i < WARMUP; i++) timeRun(r.cmd);
    const daemon: number[] = [];
    const daemonApi: number[] = [];
    const daemonNode: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      for (const r of shuffle([...runtimes])) times.get(r.name)!.push(timeRun(r.cmd));
      if (hooks.daemonRunRm) daemon.push(await hooks.daemonRunRm());
      if (hooks.daemonApiRunRm) daemonApi.push(await hooks.daemonApiRunRm());
      if (hooks.daemonRunRmNode) daemonNode.push(await hooks.daemonRunRmNode());
    }
    const shimRss = await idleShimRss(work, rootfs, stateRoot);
    const move = cgroupMoveCost(cgParent);
    const shim = await shimStart(work, rootfs, stateRoot, 20);

    const st = Object.fromEntries([...times].map(([k, v]) => [k, stats(v)]));
    const crun = st.crun?.p50;
    console.log(`runtime: /bin/true in one busybox bundle (pid/net/ipc/uts/mnt namespaces, cgroups v1), ${RUNS} interleaved runs each`);
    console.log(`${'runtime'.padEnd(28)}${'p50 ms'.padStart(9)}${'p95 ms'.padStart(9)}${'min ms'.padStart(9)}${'mean ms'.padStart(9)}`);
    const row = (n: string, s: Stats) => console.log(`${n.padEnd(28)}${s.p50.toFixed(2).padStart(9)}${s.p95.toFixed(2).padStart(9)}${s.min.toFixed(2).padStart(9)}${s.mean.toFixed(2).padStart(9)}`);
    for (const [k, s] of Object.entries(st)) row(k, s);
    const result: Record<string, unknown> = {
      runs: RUNS,
      seccomp: 'docker-default',
      tsswarm: { p50: st.tsswarm!.p50, p95: st.tsswarm!.p95, min: st.tsswarm!.min },
      ...(st.crun ? { crun: { p50: st.crun.p50, p95: st.crun.p95, min: st.crun.min } } : {}),
      ...(st.runc ? { runc: { p50: st.runc.p50, p95: st.runc.p95, min: st.runc.min } } : {}),
      ratio_vs_crun: crun ? Math.round((st.tsswarm!.p50 / crun) * 1000) / 1000 : null,
      ratio_vs_runc: st.runc ? Math.round((st.tsswarm!.p50 / st.runc.p50) * 1000) / 1000 : null,
      shim_start: { p50: shim.p50, p95: shim.p95, min: shim.min },
      shim_rss_kb: shimRss.rss,
      shim_rss_anon_kb: shimRss.anon,
      ...(move ? { cgroup_v1_move_procs_ms: move.procs_ms, cgroup_v1_move_tasks_self_ms: move.tasks_self_ms } : {}),
    };
    if (daemon.length) {
      const d = stats(daemon);
      row('tsswarm container run --rm', d);
      result.daemon_run_rm = {
        p50: d.p50, p95: d.p95, min: d.min, ratio_vs_crun: crun ? Math.round((d.p50 / crun) * 1000) / 1000 : null,
        // bin/tsswarm falls back to the Node CLI when the native front is not built.
        front: existsSync(join(dirname(RUNTIME), 'tsswarm-run')) ? 'native' : 'node',
      };
    }
    if (daemonApi.length) {
      const d = stats(daemonApi);
      row('daemon API ContainerRun --rm', d);
      result.daemon_api_run_rm = { p50: d.p50, p95: d.p95, min: d.min, ratio_vs_crun: crun ? Math.round((d.p50 / crun) * 1000) / 1000 : null };
    }
    if (daemonNode.length) {
      const d = stats(daemonNode);
      row('same, Node CLI (node bin/...)', d);
      result.daemon_run_rm_node_cli = { p50: d.p50, p95: d.p95, min: d.min, ratio_vs_crun: crun ? Math.round((d.p50 / crun) * 1000) / 1000 : null };
    }
    if (hooks.daemonRssKb) result.daemon_rss_kb = await hooks.daemonRssKb();
    console.log(`tsswarm-shim start (overlay mount + create + start, caller's view), 20 runs: p50 ${shim.p50} ms, p95 ${shim.p95} ms, min ${shim.min} ms`);
    console.log(`idle tsswarm-shim (sleep 3600 container): VmRSS ${shimRss.rss} kB, of which private (RssAnon) ${shimRss.anon} kB; the rest is the static binary's shared page cache`);
    if (move) {
      console.log(`v1 cgroup move after a quiet spell, sh included (p50 of 10): cgroup.procs write ${move.procs_ms} ms, ` +
        `self-move via tasks "0" ${move.tasks_self_ms} ms (tsswarm-runtime's init does the latter)`);
    }
    console.log(`ratio_vs_crun (tsswarm p50 / crun p50): ${result.ratio_vs_crun}`);
    return result;
  } finally {
    umountAll(work);
    for (const c of ['memory', 'cpu', 'cpuacct', 'pids', 'freezer', 'devices', 'blkio', 'cpuset', 'systemd']) {
      const d = `/sys/fs/cgroup/${c}${cgParent}`;
      if (!existsSync(d)) continue;
      spawnSync('sh', ['-c', `rmdir ${d}/* ${d} 2>/dev/null`]);
    }
    rmSync(work, { recursive: true, force: true });
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:runtime: must run as root (namespaces, cgroups, mounts)');
    process.exit(1);
  }
  const unified = spawnSync('stat', ['-f', '-c', '%T', '/sys/fs/cgroup/unified'], { encoding: 'utf8' }).stdout.trim();
  if (!process.env[IN_NS] && unified === 'cgroup2fs') {
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, [IN_NS]: '1' },
    });
    process.exit(r.status ?? 1);
  }
  if (process.env[IN_NS]) hideCgroup2();
  const daemon = await startBenchDaemon();
  try {
    const result = await runtimeBench(daemon.hooks);
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    await daemon.stop();
  }
}

/**
 * A real daemon for the end-to-end rows: its own data dir, socket and cgroup parent, the busybox
 * image imported; `tsswarm container run --rm IMAGE true` timed as a user runs it (a new CLI
 * process each time) and through the API from a warm client.
 */
async function startBenchDaemon(): Promise<{ hooks: DaemonHooks; stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const { DaemonClient } = await import('../src/cli/client.js');
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cli = join(repo, 'bin', 'tsswarm');
  const dir = tempDir('tsswarm-bench-daemon-');
  const socket = join(dir, 'tsswarm.sock');
  const proc = spawn(process.execPath, [cli, 'daemon', '--data-dir', join(dir, 'data'), '--socket', socket, '--cgroup-parent', `tsswarm-bench-d${process.pid}`,
    '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(() => existsSync(socket), 15_000);
  execFileSync('bash', [join(repo, 'scripts', 'busybox-rootfs.sh'), join(dir, 'busybox.tar')]);
  execFileSync(process.execPath, [cli, '-H', `unix://${socket}`, 'image', 'import', join(dir, 'busybox.tar'), 'bench/busybox:1']);
  const client = new DaemonClient(`unix:${socket}`);
  const nodeCliEnv = { ...process.env };
  delete nodeCliEnv.NODE_EXTRA_CA_CERTS;
  const hooks: DaemonHooks = {
    daemonRunRm: async () => {
      const t0 = performance.now();
      // bin/tsswarm itself, as a user's shell runs it (its #! line), not `node bin/tsswarm`.
      execFileSync(cli, ['-H', `unix://${socket}`, 'container', 'run', '--rm', 'bench/busybox:1', 'true']);
      return performance.now() - t0;
    },
    daemonRunRmNode: async () => {
      const t0 = performance.now();
      // As bin/tsswarm starts node for every other command: without NODE_EXTRA_CA_CERTS.
      execFileSync(process.execPath, [cli, '-H', `unix://${socket}`, 'container', 'run', '--rm', 'bench/busybox:1', 'true'], { env: nodeCliEnv });
      return performance.now() - t0;
    },
    daemonApiRunRm: async () => {
      const t0 = performance.now();
      for await (const ev of client.stream('ContainerRun', { spec: { image: 'bench/busybox:1', cmd: ['true'], autoRemove: true, stopTimeout: 10 }, detach: false })) {
        if (ev.exit && ev.exit.exitCode !== 0) throw new Error(`benchmark container exited ${ev.exit.exitCode}`);
      }
      return performance.now() - t0;
    },
    daemonRssKb: async () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? 0),
  };
  return {
    hooks,
    stop: async () => {
      client.close();
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      spawnSync('sh', ['-c', `for d in /sys/fs/cgroup/*/tsswarm-bench-d${process.pid}; do rmdir "$d" 2>/dev/null; done`]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Only when run as a script, so the daemon author can import runtimeBench with hooks.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((e) => {
    console.error(`bench:runtime: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
