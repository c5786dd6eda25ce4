/**
 * npm run bench:pull — tsswarm's registry pull into a cold image store against `docker pull` and
 * `podman pull`, the anchors of /work/shared/ANCHORS.md ("Registry pull"), measured in the same run.
 *
 * Image: the busybox rootfs plus PULL_BENCH_LAYERS (default 5) layers of PULL_BENCH_MIB (default 40)
 * MiB of random data, gzip, OCI manifest, pushed by skopeo to Debian's docker-registry. Everything
 * runs inside one network namespace of ours (the private dockerd's, see anchor/docker-engine.ts), the
 * registry on its loopback, so that dockerd can reach it and no traffic leaves the namespace.
 *
 * Interleaved per repetition (PULL_BENCH_REPS, default 5), the order rotating, each from a cold store
 * and after a global `sync` (so that no puller pays for another's dirty pages): tsswarm's pull through
 * the ImageStore API in a long-lived process of its own (pull-child.ts), `docker pull` (+ rmi),
 * `podman pull` (fresh --root), and `skopeo copy` to an OCI layout as the download-only floor.
 * Medians; RSS growth of tsswarm's process and of dockerd+containerd during the pull, podman's peak.
 * PULL_BENCH_DOCKER=off / PULL_BENCH_PODMAN=off leave an anchor out. Prints a table, last `RESULT {json}`.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { DockerEngine, ensureDebianPackage, ensureDockerInstalled } from './anchor/docker-engine.js';
import { dockerPull, podmanPull, skopeoCopy, type PullRun } from './anchor/pullers.js';
import { startRegistry, type RunningRegistry } from '../testkit/registry.js';
import { sh, writeOciLayout } from '../testkit/images.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const LAYERS = Number(process.env.PULL_BENCH_LAYERS ?? 5);
const MIB = Number(process.env.PULL_BENCH_MIB ?? 40);
const REPS = Number(process.env.PULL_BENCH_REPS ?? 5);

type Puller = 'tsswarm' | 'docker' | 'podman' | 'skopeo';

function median(xs: number[]): number | null {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const round = (x: number | null, digits = 3): number | null => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);

/** The benchmark's image as an OCI layout in `dir`: busybox, then LAYERS layers of random data, all gzip. */
function buildImage(dir: string): string {
  sh(join(REPO_ROOT, 'scripts/busybox-rootfs.sh'), [join(dir, 'busybox.tar')]);
  sh('gzip', ['-1', join(dir, 'busybox.tar')]);
  const layers = [{ file: join(dir, 'busybox.tar.gz') }];
  for (let i = 0; i < LAYERS; i++) {
    const src = join(dir, `src${i}`);
    mkdirSync(src);
    sh('sh', ['-c', `head -c ${MIB << 20} /dev/urandom > ${src}/data && tar -C ${src} --numeric-owner -cf - data | gzip -1 > ${dir}/layer${i}.tar.gz`]);
    rmSync(src, { recursive: true });
    layers.push({ file: join(dir, `layer${i}.tar.gz`) });
  }
  writeOciLayout(join(dir, 'layout'), layers);
  return join(dir, 'layout');
}

/** The tsswarm puller process, inside the namespace; one request at a time. */
class TsswarmPuller {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly answers: AsyncIterator<string>;

  constructor(netns: string) {
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, join(REPO_ROOT, 'dist/bench/pull-child.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.answers = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async pull(ref: string, storeDir: string): Promise<PullRun> {
    this.child.stdin.write(`pull ${ref} ${storeDir}\n`);
    const line = await this.answers.next();
    if (line.done) throw new Error('the tsswarm puller exited');
    const a = JSON.parse(line.value) as { seconds?: number; rssBeforeMiB?: number; rssPeakMiB?: number; error?: string };
    rmSync(storeDir, { recursive: true, force: true });
    if (a.error !== undefined) throw new Error(`tsswarm pull: ${a.error}`);
    return { seconds: a.seconds as number, rssMiB: (a.rssPeakMiB as number) - (a.rssBeforeMiB as number) };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end(); // it exits at the end of its input
    await exited;
  }
}

/** A namespace of our own with only lo, for when the docker anchor is off. */
function ownNetns(): { name: string; remove: () => void } {
  const name = `tswbp-${process.pid}`;
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return { name, remove: () => { spawnSync('ip', ['netns', 'del', name]); } };
}

interface Anchors { docker: string | null; podman: string | null }

/** Why each anchor is not measured (null when it is), installing what is missing. */
function anchorsAvailable(): Anchors {
  const docker = process.env.PULL_BENCH_DOCKER === 'off' ? 'disabled by PULL_BENCH_DOCKER=off' : ensureDockerInstalled();
  const podman = process.env.PULL_BENCH_PODMAN === 'off' ? 'disabled by PULL_BENCH_PODMAN=off' : ensureDebianPackage('podman', ['/usr/bin/podman']);
  return { docker, podman };
}

async function measure(netns: string, engine: DockerEngine | undefined, anchors: Anchors, dir: string): Promise<void> {
  let registry: RunningRegistry | undefined;
  let tsswarm: TsswarmPuller | undefined;
  try {
    const layout = buildImage(dir);
    mkdirSync(join(dir, 'registry'));
    registry = await startRegistry(join(dir, 'registry'), {}, { netns, addr: '127.0.0.1:5000' });
    const ref = `${registry.addr}/bench/pull:1`;
    sh('ip', ['netns', 'exec', netns, 'skopeo', 'copy', '--quiet', '--insecure-policy', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${ref}`]);
    tsswarm = new TsswarmPuller(netns);
    const pullers: Puller[] = ['tsswarm', 'skopeo'];
    if (engine) pullers.push('docker');
    if (anchors.podman === null) pullers.push('podman');
    const runs = new Map<Puller, PullRun[]>(pullers.map((p) => [p, []]));
    const once = (p: Puller, rep: number): Promise<PullRun> => {
      const where = join(dir, `${p}-${rep}`);
      switch (p) {
        case 'tsswarm': return (tsswarm as TsswarmPuller).pull(ref, where);
        case 'docker': return dockerPull(engine as DockerEngine, ref);
        case 'podman': return podmanPull(netns, ref, where);
        case 'skopeo': return skopeoCopy(netns, ref, where);
      }
    };
    for (let rep = 0; rep < REPS; rep++) {
      const order = pullers.map((_, i) => pullers[(i + rep) % pullers.length] as Puller);
      for (const p of order) {
        spawnSync('sync'); // nobody's flush pays for the previous puller's dirty pages
        const r = await once(p, rep);
        runs.get(p)?.push(r);
        console.log(`# rep ${rep + 1}/${REPS} ${p.padEnd(8)} ${r.seconds.toFixed(3)} s${Number.isFinite(r.rssMiB) ? `  ${r.rssMiB.toFixed(1)} MiB` : ''}`);
      }
    }
    report(runs, anchors, engine !== undefined);
  } finally {
    await tsswarm?.stop();
    await registry?.stop();
  }
}

function report(runs: Map<Puller, PullRun[]>, anchors: Anchors, docker: boolean): void {
  const secs = (p: Puller): number | null => median((runs.get(p) ?? []).map((r) => r.seconds));
  const mem = (p: Puller): number | null => median((runs.get(p) ?? []).map((r) => r.rssMiB));
  const tss = secs('tsswarm') as number;
  const ratio = (p: Puller): number | null => { const s = secs(p); return s === null ? null : round(tss / s, 4); };
  const mb = ((MIB << 20) * LAYERS) / 1e6;
  const result = {
    image_mb: round(mb, 1), layers: LAYERS + 1, mib_per_layer: MIB, reps: REPS,
    tsswarm_pull_s: round(tss), tsswarm_mb_per_s: round(mb / tss, 1), tsswarm_rss_growth_mib: round(mem('tsswarm'), 1),
    docker_pull_s: round(secs('docker')), docker_rss_growth_mib: round(mem('docker'), 1),
    podman_pull_s: round(secs('podman')), podman_peak_rss_mib: round(mem('podman'), 1),
    skopeo_copy_s: round(secs('skopeo')),
    ratio_vs_docker_pull: ratio('docker'), ratio_vs_podman_pull: ratio('podman'), ratio_vs_skopeo_copy: ratio('skopeo'),
    docker: docker ? 'measured' : anchors.docker, podman: anchors.podman ?? 'measured',
    samples_s: Object.fromEntries([...runs].map(([p, rs]) => [p, rs.map((r) => round(r.seconds))])),
  };
  const row = (name: string, s: number | null, extra: string): string => `${name.padEnd(34)} ${s === null ? '     -' : s.toFixed(2).padStart(6)}  ${extra}`;
  console.log(`\nregistry pull, ${result.image_mb} MB in ${result.layers} layers, median of ${REPS} (s)`);
  console.log(row('tsswarm pull (ImageStore API)', result.tsswarm_pull_s, `RSS growth ${result.tsswarm_rss_growth_mib} MiB`));
  console.log(row('docker pull (dockerd 20.10)', result.docker_pull_s, docker ? `dockerd+containerd RSS growth ${result.docker_rss_growth_mib} MiB; ratio ${result.ratio_vs_docker_pull}` : `(${anchors.docker})`));
  console.log(row('podman pull', result.podman_pull_s, anchors.podman === null ? `peak RSS ${result.podman_peak_rss_mib} MiB; ratio ${result.ratio_vs_podman_pull}` : `(${anchors.podman})`));
  console.log(row('skopeo copy (download+digest only)', result.skopeo_copy_s, `ratio ${result.ratio_vs_skopeo_copy}`));
  console.log(`RESULT ${JSON.stringify(result)}`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('must run as root (network namespace, dockerd)');
  const anchors = anchorsAvailable();
  const dir = mkdtempSync(join(tmpdir(), 'tsswarm-bench-pull-'));
  let engine: DockerEngine | undefined;
  let own: { name: string; remove: () => void } | undefined;
  const cleanup = async (): Promise<void> => {
    await engine?.stop();
    own?.remove();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`bench:pull: ${signal}: stopping what this benchmark started`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (anchors.docker === null) {
      engine = new DockerEngine();
      try {
        await engine.start();
      } catch (err) {
        anchors.docker = `dockerd did not start: ${(err as Error).message}`;
        await engine.stop();
        engine = undefined;
      }
    }
    if (!engine) own = ownNetns();
    await measure(engine?.netns ?? (own as { name: string }).name, engine, anchors, dir);
  } finally {
    await cleanup();
  }
}

await main();
