/**
 * The edge between the daemon and the OCI runtimes: starts containers through tsswarm-shim (which
 * outlives the daemon) and calls the runtime's CLI for pause, resume, exec and delete.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../launcher/command-launcher.js';

export type RuntimeName = 'tsswarm' | 'runc' | 'crun';
export const RUNTIME_NAMES: RuntimeName[] = ['tsswarm', 'runc', 'crun'];

/** native/build/ at the repository root, from src/ or dist/src/; TSSWARM_NATIVE_DIR overrides. */
export function nativeDir(): string {
  if (process.env.TSSWARM_NATIVE_DIR) return process.env.TSSWARM_NATIVE_DIR;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'native', 'build');
    if (existsSync(join(candidate, 'tsswarm-shim'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('native runtime not built: native/build/tsswarm-shim is missing (run scripts/setup.sh)');
}

/** Hybrid = v1 controllers plus a cgroup2 tree at /sys/fs/cgroup/unified; crun refuses that layout. */
export function cgroupLayout(): 'v1' | 'v2' | 'hybrid' {
  const CGROUP2_MAGIC = 0x63677270;
  try {
    if (statfsSync('/sys/fs/cgroup').type === CGROUP2_MAGIC) return 'v2';
    if (statfsSync('/sys/fs/cgroup/unified').type === CGROUP2_MAGIC) return 'hybrid';
  } catch { /* no unified mount */ }
  return 'v1';
}

/** Runs a command in a private mount namespace whose /sys/fs/cgroup shows only the v1 hierarchies. */
const HIDE_CGROUP2 = `set -e
T=$(mktemp -d /tmp/tsswarm-cgv1.XXXXXX); mount -t tmpfs -o mode=755 cgv1 "$T"
for m in $(awk '$9=="cgroup" && $5 ~ "^/sys/fs/cgroup/" {print $5}' /proc/self/mountinfo); do
  mkdir -p "$T/\${m#/sys/fs/cgroup/}"; mount --bind "$m" "$T/\${m#/sys/fs/cgroup/}"; done
mount --move "$T" /sys/fs/cgroup; rmdir "$T"; exec "$@"`;

export interface OverlayLayers {
  lower: string[];
  upper: string;
  work: string;
}

export interface StartRequest {
  id: string;
  bundle: string;
  stateDir: string;
  logPath: string;
  overlay: OverlayLayers;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class RuntimeDriver {
  readonly binary: string;
  private readonly shim: string;
  private readonly hideCgroup2: boolean;

  constructor(readonly name: RuntimeName, readonly stateRoot: string) {
    const dir = nativeDir();
    this.shim = join(dir, 'tsswarm-shim');
    this.binary = name === 'tsswarm' ? join(dir, 'tsswarm-runtime') : findOnPath(name);
    this.hideCgroup2 = name === 'crun' && cgroupLayout() === 'hybrid';
  }

  /** Resolves once the container's process runs; rejects with the shim's one-line reason. */
  async start(req: StartRequest): Promise<void> {
    const args = [
      '--runtime', this.binary,
      '--runtime-arg', '--root', '--runtime-arg', this.stateRoot,
      '--id', req.id, '--bundle', req.bundle, '--state-dir', req.stateDir, '--log', req.logPath,
      '--lower', req.overlay.lower.join(':'), '--upper', req.overlay.upper, '--work', req.overlay.work,
    ];
    if (this.hideCgroup2) args.push('--hide-cgroup2');
    const result = await run(this.shim, args);
    if (result.code !== 0) {
      throw new Error(lastLine(result.stderr) || `tsswarm-shim exited with ${result.code}`);
    }
  }

  /** Whether the runtime keeps state for the container: <root>/<id>, for ours, runc and crun alike. */
  hasState(id: string): boolean {
    return existsSync(join(this.stateRoot, id));
  }

  /** `RUNTIME --root R ARGS...`, e.g. pause ID, resume ID, delete --force ID; killed after `timeoutMs` if given. */
  async command(args: string[], timeoutMs = 0): Promise<CommandResult> {
    const [file, argv] = this.argv(args);
    return run(file, argv, timeoutMs);
  }

  async commandOrThrow(args: string[]): Promise<string> {
    const result = await this.command(args);
    if (result.code !== 0) {
      throw new Error(lastLine(result.stderr) || `${this.name} ${args[0]} exited with ${result.code}`);
    }
    return result.stdout;
  }

  /** Starts `exec --process FILE ID` with piped stdout/stderr; the caller streams and awaits it. */
  exec(id: string, processFile: string): ChildProcess {
    const [file, argv] = this.argv(['exec', '--process', processFile, id]);
    return spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  private argv(args: string[]): [string, string[]] {
    const full = ['--root', this.stateRoot, ...args];
    if (!this.hideCgroup2) return [this.binary, full];
    return ['unshare', ['-m', '--propagation', 'private', 'sh', '-c', HIDE_CGROUP2, 'sh', this.binary, ...full]];
  }
}

/** The shim execs the runtime by path: resolve runc/crun once, with a clear error if missing. */
function findOnPath(name: string): string {
  for (const dir of (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`runtime ${name} not found on PATH (install it: apt-get install ${name})`);
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

async function run(file: string, args: string[], timeoutMs = 0): Promise<CommandResult> {
  const r = await runCommand(file, args, '', timeoutMs);
  return { code: r.code ?? 128, stdout: r.stdout, stderr: r.stderr };
}
