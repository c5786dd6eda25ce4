/**
 * Starts real daemons (bin/tsswarm, built into dist/) with their own data dir, socket and cgroup
 * parent, and runs the CLI against them. Everything a test starts is stopped by PID in teardown.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runtimeStateRoot } from '../../src/engine/runtime/state-root.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO, 'bin/tsswarm');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class TestDaemon {
  readonly dir: string;
  readonly socket: string;
  readonly dataDir: string;
  readonly cgroupParent: string;
  private proc?: ChildProcess;
  logs = '';

  constructor(readonly name: string, readonly runtime = 'tsswarm', readonly extraArgs: string[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), `tsswarm-test-${name}-`));
    this.socket = join(this.dir, 'tsswarm.sock');
    this.dataDir = join(this.dir, 'data');
    this.cgroupParent = `tsswarm-test-${name}-${process.pid}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    rmSync(this.socket, { force: true });
    // These daemons share the machine's own network namespace, which tests must leave alone.
    const network = this.extraArgs.includes('--network-driver') ? [] : ['--network-driver', 'none'];
    const proc = spawn(process.execPath, [CLI, 'daemon', '--data-dir', this.dataDir, '--socket', this.socket,
      '--cgroup-parent', this.cgroupParent, '--runtime', this.runtime, ...network, ...this.extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => { this.logs += d; });
    this.proc = proc;
    const deadline = Date.now() + 15_000;
    while (!existsSync(this.socket)) {
      if (proc.exitCode !== null) throw new Error(`daemon ${this.name} exited with ${proc.exitCode}: ${this.logs}`);
      if (Date.now() > deadline) throw new Error(`daemon ${this.name} did not create its socket: ${this.logs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL, as a crash would: containers must survive it. */
  async crash(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }

  cli(args: string[], timeoutMs = 90_000): Promise<CliResult> {
    return runProcess(process.execPath, [CLI, '-H', `unix://${this.socket}`, ...args], { timeoutMs });
  }

  /** Like cli() but fails the test with the daemon's words when the command fails. */
  async ok(args: string[]): Promise<string> {
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`tsswarm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** Removes every container, stops the daemon, and leaves no cgroup or file behind. */
  async destroy(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const ids = (await this.cli(['container', 'ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
      for (const id of ids) await this.cli(['container', 'rm', '-f', id]);
    }
    await this.stop();
    for (const controller of readdirSync('/sys/fs/cgroup')) {
      const dir = join('/sys/fs/cgroup', controller, this.cgroupParent);
      if (existsSync(dir)) {
        for (const child of readdirSync(dir, { withFileTypes: true })) {
          if (child.isDirectory()) try { rmdirSync(join(dir, child.name)); } catch { /* busy: reported by the test */ }
        }
        try { rmdirSync(dir); } catch { /* see above */ }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(runtimeStateRoot(this.dataDir), { recursive: true, force: true });
  }
}

/** Runs `file args` to the end and resolves with its exit code and output, whatever they are. */
export function runProcess(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(file, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolvePromise({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** A started daemon of its own with the busybox image imported as `image`, and a scratch dir; `destroy` removes both. */
export async function daemonWithImage(name: string, image: string): Promise<{ daemon: TestDaemon; scratch: string; destroy(): Promise<void> }> {
  const scratch = tempDir(name);
  const daemon = new TestDaemon(name);
  const destroy = async () => {
    await daemon.destroy();
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    await daemon.start();
    await daemon.ok(['image', 'import', await busyboxTarball(scratch), image]);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { daemon, scratch, destroy };
}

/** Builds the busybox test image tarball once per test file. */
export function busyboxTarball(dir: string): Promise<string> {
  const out = join(dir, 'busybox.tar');
  return new Promise((res, rej) => execFile('bash', [join(REPO, 'scripts/busybox-rootfs.sh'), out], (err, _o, stderr) => (err ? rej(new Error(stderr)) : res(out))));
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `tsswarm-test-${name}-`));
}

/** Polls `probe` until it returns a value (a throw counts as "not yet"), or fails naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `count` daemons on 127.0.0.1 (`addr(i)`), each named `${name}${i}` with the given images imported. */
export async function startDaemons(
  name: string, count: number, addr: (i: number) => string, tarball: string, images: string[], hostname = (i: number) => `${name}${i}`,
): Promise<TestDaemon[]> {
  const daemons: TestDaemon[] = [];
  for (let i = 0; i < count; i++) {
    const d = new TestDaemon(`${name}${i}`, 'tsswarm', ['--listen-addr', addr(i), '--hostname', hostname(i)]);
    daemons.push(d);
    await d.start();
    for (const image of images) await d.ok(['image', 'import', tarball, image]);
  }
  return daemons;
}

/**
 * `swarm init` on the first daemon, then the others join as managers one at a time, each waited for
 * until it is a reachable voter. Returns what each `swarm join` printed.
 */
export async function formManagerSwarm(daemons: TestDaemon[], addr: (i: number) => string, heartbeat = '500ms'): Promise<string[]> {
  const [first, ...rest] = daemons;
  await first!.ok(['swarm', 'init', '--advertise-addr', addr(0), '--dispatcher-heartbeat', heartbeat]);
  const token = (await first!.ok(['swarm', 'join-token', '-q', 'manager'])).trim();
  const joined: string[] = [];
  for (const [j, d] of rest.entries()) {
    joined.push(await d.ok(['swarm', 'join', '--token', token, '--listen-addr', addr(j + 1), addr(0)]));
    await waitFor(`${d.name} to be a reachable manager`, async () => {
      const nodes = JSON.parse(await first!.ok(['node', 'ls', '--format', 'json']));
      return nodes.filter((n: any) => n.managerStatus && (n.managerStatus.leader || n.managerStatus.reachability === 'reachable')).length === j + 2 ? true : undefined;
    }, 30_000);
  }
  return joined;
}
