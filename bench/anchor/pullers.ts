/**
 * The other pullers bench:pull times against tsswarm, each from a cold store inside the benchmark's
 * network namespace (where the registry is): `docker pull` through the private dockerd of
 * docker-engine.ts, `podman pull` with a fresh --root each time, and `skopeo copy` to an OCI layout
 * (download and digest only, no unpack: a floor). Each returns seconds and its memory figure.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { DockerEngine } from './docker-engine.js';
import { peakRssMiB, resetPeakRss, rssMiB } from '../proc-memory.js';

export interface PullRun {
  seconds: number;
  /** dockerd + containerd: peak during the pull minus before; podman: the process's peak RSS. */
  rssMiB: number;
}

function inNetns(netns: string, cmd: string[]): string[] {
  return ['ip', 'netns', 'exec', netns, ...cmd];
}

/** Runs a command to completion; rejects with its stderr's last line when it fails. */
function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stderr);
      else reject(new Error(`${argv.slice(4, 6).join(' ')}: exit ${code}: ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`));
    });
  });
}

/** `docker pull`, then `docker rmi` so that the next pull starts cold again (untimed). */
export async function dockerPull(engine: DockerEngine, ref: string): Promise<PullRun> {
  const { dockerd, containerd } = engine.pids();
  const before = rssMiB(dockerd) + rssMiB(containerd);
  resetPeakRss(dockerd);
  resetPeakRss(containerd);
  const started = performance.now();
  await engine.cli('pull', '-q', ref);
  const seconds = (performance.now() - started) / 1000;
  const peak = peakRssMiB(dockerd) + peakRssMiB(containerd);
  await engine.cli('rmi', ref);
  return { seconds, rssMiB: peak - before };
}

/** `podman pull` into a fresh root (removed afterwards); its peak RSS from /usr/bin/time. */
export async function podmanPull(netns: string, ref: string, root: string): Promise<PullRun> {
  const argv = inNetns(netns, ['/usr/bin/time', '-f', 'maxrss_kib=%M', 'podman', '--root', root, '--runroot', `${root}-run`,
    '--storage-driver', 'overlay', 'pull', '-q', '--tls-verify=false', ref]);
  const started = performance.now();
  const stderr = await run(argv);
  const seconds = (performance.now() - started) / 1000;
  rmSync(root, { recursive: true, force: true });
  rmSync(`${root}-run`, { recursive: true, force: true });
  const kib = Number(/maxrss_kib=(\d+)/.exec(stderr)?.[1] ?? NaN);
  return { seconds, rssMiB: kib / 1024 };
}

/** `skopeo copy docker://REF oci:DIR`: what download and digest alone cost. */
export async function skopeoCopy(netns: string, ref: string, dir: string): Promise<PullRun> {
  const started = performance.now();
  await run(inNetns(netns, ['skopeo', 'copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:x`]));
  const seconds = (performance.now() - started) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return { seconds, rssMiB: NaN };
}
