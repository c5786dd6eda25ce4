// Shared fixtures for the runtime tests and the runtime benchmark: a busybox rootfs, OCI bundles
// in the shape `runc spec` produces, and thin wrappers that run the real binaries.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Works both from test/runtime (vitest) and from dist/test/runtime or dist/bench (compiled).
export const REPO = [resolve(here, '../..'), resolve(here, '../../..')].find((d) =>
  existsSync(join(d, 'native', 'Makefile')),
) ?? resolve(here, '../..');
export const RUNTIME = join(REPO, 'native/build/tsswarm-runtime');
export const SHIM = join(REPO, 'native/build/tsswarm-shim');

export interface Result { status: number; stdout: string; stderr: string }

export function sh(cmd: string, args: string[], opts: { input?: string; timeout?: number } = {}): Result {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    timeout: opts.timeout ?? 30_000,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 128 + 1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * For commands that leave a process behind (create, run -d, the shim's caller side): that process
 * inherits stdio, so pipes would never close. Use files instead.
 */
export function shDetached(cmd: string, args: string[], dir: string): Result {
  const out = join(dir, `.out-${process.pid}-${seq}`);
  const err = join(dir, `.err-${process.pid}-${seq++}`);
  const o = openSync(out, 'w');
  const e = openSync(err, 'w');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', o, e], timeout: 30_000 });
    if (r.error) throw r.error;
    return { status: r.status ?? 129, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  } finally {
    closeSync(o);
    closeSync(e);
    rmSync(out, { force: true });
    rmSync(err, { force: true });
  }
}
let seq = 0;

export function buildNative(): void {
  execFileSync('make', ['-s', '-C', join(REPO, 'native')], { stdio: 'inherit' });
}

/** Extracts the busybox test image (scripts/busybox-rootfs.sh) into DIR/rootfs once. */
export function makeRootfs(dir: string): string {
  const tar = join(dir, 'rootfs.tar');
  const rootfs = join(dir, 'rootfs');
  execFileSync(join(REPO, 'scripts/busybox-rootfs.sh'), [tar]);
  mkdirSync(rootfs, { recursive: true });
  execFileSync('tar', ['-C', rootfs, '-xf', tar]);
  return rootfs;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// The defaults of `runc spec` (runc 1.1), with terminal off: a bundle any OCI runtime accepts.
export function baseSpec(rootPath: string, args: string[]): Record<string, any> {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootPath, readonly: true },
    hostname: 'tsswarm-test',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export function writeBundle(dir: string, spec: object): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

/** v1 cgroup dirs of a cgroupsPath that still exist (should be none after delete). */
export function cgroupLeftovers(cgPath: string): string[] {
  const out: string[] = [];
  for (const c of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', c, cgPath);
    if (existsSync(d)) out.push(d);
  }
  return out;
}

/** Removes cgroup dirs left by a failed test, deepest first; ignores busy ones. */
export function removeCgroups(cgPath: string): void {
  for (const d of cgroupLeftovers(cgPath)) {
    try { rmSync(d, { recursive: false }); } catch { try { execFileSync('rmdir', [d]); } catch { /* busy */ } }
  }
}

export function mountedUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(prefix));
}

export function umountAll(prefix: string): void {
  for (const mp of mountedUnder(prefix).reverse()) {
    try { execFileSync('umount', ['-l', mp]); } catch { /* already gone */ }
  }
}

export async function waitFor(pred: () => boolean, ms: number, stepMs = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return pred();
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
