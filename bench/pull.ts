/**
 * npm run bench:pull — tsswarm's registry pull into a cold image store, against the anchors of
 * /work/shared/ANCHORS.md ("Registry pull") measured in the same run where installed.
 *
 * Image: the busybox rootfs plus PULL_BENCH_LAYERS (default 5) layers of PULL_BENCH_MIB (default 40)
 * MiB of random data, gzip, OCI manifest, pushed by skopeo to Debian's docker-registry on loopback.
 * Measured, interleaved per repetition (PULL_BENCH_REPS, default 5): tsswarm's pull (in this process,
 * a fresh store each time, RSS sampled every 20 ms), `skopeo copy docker:// oci:` (download and
 * digest only, no unpack: a floor), and `podman pull` with a fresh --root when podman is installed.
 * docker pull needs dockerd in a network namespace (see the converge bench) and is not run here; its
 * ratio comes out null.
 * Prints a table and, last, `RESULT {json}`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ImageStore } from '../src/engine/images/store.js';
import { RegistryClient } from '../src/engine/images/registry/client.js';
import { skopeoCopy, startRegistry } from '../testkit/registry.js';
import { makeTempDir, sh, writeOciLayout } from '../testkit/images.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

const LAYERS = Number(process.env.PULL_BENCH_LAYERS ?? 5);
const MIB = Number(process.env.PULL_BENCH_MIB ?? 40);
const REPS = Number(process.env.PULL_BENCH_REPS ?? 5);

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function have(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function main(): Promise<void> {
  const dir = makeTempDir();
  const registryDir = join(dir, 'registry');
  mkdirSync(registryDir);
  const registry = await startRegistry(registryDir);
  try {
    // test-support's busyboxRootfs finds the script relative to src/, which dist/ does not have.
    sh(join(REPO_ROOT, 'scripts/busybox-rootfs.sh'), [join(dir, 'busybox.tar')]);
    const layers = [{ file: join(dir, 'busybox.tar') }];
    for (let i = 0; i < LAYERS; i++) {
      const src = join(dir, `src${i}`);
      mkdirSync(src);
      spawnSync('sh', ['-c', `head -c ${MIB << 20} /dev/urandom > ${src}/data && tar -C ${src} -cf - data | gzip -1 > ${dir}/layer${i}.tar.gz`]);
      layers.push({ file: join(dir, `layer${i}.tar.gz`) });
    }
    spawnSync('sh', ['-c', `gzip -1 -k ${layers[0]?.file}`]);
    layers[0] = { file: `${layers[0]?.file}.gz` };
    writeOciLayout(join(dir, 'layout'), layers);
    const ref = `${registry.addr}/bench/pull:1`;
    skopeoCopy(`oci:${join(dir, 'layout')}:latest`, `docker://${ref}`);
    const podman = have('podman');
    const rows: Record<string, number[]> = { tsswarm: [], skopeo: [], podman: [] };
    const rssGrowth: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const storeDir = join(dir, `store${rep}`);
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
      const client = new RegistryClient();
      const t = performance.now();
      const store = await ImageStore.open(storeDir);
      await store.pull(ref, { client });
      rows.tsswarm?.push((performance.now() - t) / 1000);
      clearInterval(sampler);
      client.close();
      rssGrowth.push((peak - before) / (1 << 20));
      rmSync(storeDir, { recursive: true, force: true });

      const oci = join(dir, `skopeo${rep}`);
      rows.skopeo?.push(timed(() => skopeoCopy(`docker://${ref}`, `oci:${oci}:x`)));
      rmSync(oci, { recursive: true, force: true });

      if (podman) {
        const root = join(dir, `podman${rep}`);
        rows.podman?.push(timed(() => sh('podman', ['--root', root, '--runroot', `${root}-run`, 'pull', '-q', '--tls-verify=false', ref])));
        rmSync(root, { recursive: true, force: true });
      }
    }
    const tss = median(rows.tsswarm ?? []);
    const mb = ((MIB << 20) * LAYERS) / 1e6;
    const result = {
      layers: LAYERS + 1, mib_per_layer: MIB, reps: REPS,
      tsswarm_pull_s: tss, tsswarm_mb_per_s: mb / tss,
      skopeo_copy_s: median(rows.skopeo ?? []),
      podman_pull_s: podman ? median(rows.podman ?? []) : null,
      docker_pull_s: null,
      ratio_vs_podman_pull: podman ? tss / median(rows.podman ?? []) : null,
      ratio_vs_docker_pull: null,
      ratio_vs_skopeo_copy: tss / median(rows.skopeo ?? []),
      rss_growth_mib: median(rssGrowth),
    };
    console.log('puller                      seconds (median)');
    console.log(`tsswarm pull (cold store)   ${tss.toFixed(2)}`);
    console.log(`skopeo copy (no unpack)     ${result.skopeo_copy_s.toFixed(2)}`);
    console.log(`podman pull                 ${podman ? result.podman_pull_s?.toFixed(2) : 'not installed'}`);
    console.log(`RSS growth during pull      ${result.rss_growth_mib.toFixed(1)} MiB`);
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
