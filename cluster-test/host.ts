/**
 * One test host: a network namespace and the `tsswarm daemon` that runs in it, with its own data
 * dir, socket and cgroup parent. The daemon is entered into the namespace with `nsenter --net`
 * rather than `ip netns exec`, which would remount /sys and hide the cgroup hierarchies the
 * runtime needs. The harness owns the daemon by PID: start, kill -9, SIGSTOP/SIGCONT, restart.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { serviceClient } from '../src/rpc/proto.js';

export const REPO = resolve(import.meta.dirname, import.meta.dirname.includes('/dist/') ? '../..' : '..');
export const CLI_MAIN = join(REPO, 'dist/src/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type DaemonState = 'stopped' | 'running' | 'paused';

export class CliError extends Error {
  constructor(readonly args: string[], readonly result: CliResult) {
    super(`tsswarm ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CliError';
  }
}

/** The daemon's overlay namespaces are named `c<run>h<host>-...`, so that teardown finds them (see fabric.ts). */
export function networkPrefixOf(hostNetns: string): string {
  const m = /(\d+)-h(\d+)$/.exec(hostNetns);
  if (!m) throw new Error(`unexpected host namespace name ${hostNetns}`);
  return `c${m[1]}h${m[2]}`;
}

export class Host {
  readonly name: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly socket: string;
  readonly cgroupParent: string;
  readonly logFile: string;
  private proc?: ChildProcess;
  private exited?: Promise<void>;
  private swarmClient?: grpc.Client & Record<string, Function>;
  private controlClient?: grpc.Client & Record<string, Function>;
  state: DaemonState = 'stopped';
  /** called whenever the daemon's pid changes, so the run's state file can name it */
  onPid: () => void = () => {};

  constructor(
    readonly index: number,
    readonly netns: string,
    readonly ip: string,
    workDir: string,
    readonly role: 'manager' | 'worker',
    private readonly daemonArgs: string[] = [],
  ) {
    this.name = `h${index}`;
    this.dir = join(workDir, this.name);
    this.dataDir = join(this.dir, 'data');
    this.socket = join(this.dir, 'tsswarm.sock');
    this.logFile = join(this.dir, 'daemon.log');
    this.cgroupParent = `${netns}`;
    mkdirSync(this.dir, { recursive: true });
  }

  /** host:port of the swarm listener */
  get addr(): string {
    return `${this.ip}:2377`;
  }

  get pid(): number | undefined {
    return this.state === 'stopped' ? undefined : this.proc?.pid;
  }

  /** Starts the daemon inside the host's namespace and waits for its socket. */
  async start(): Promise<void> {
    if (this.state !== 'stopped') throw new Error(`${this.name}: daemon already running (pid ${this.proc?.pid})`);
    rmSync(this.socket, { force: true });
    const log = openSync(this.logFile, 'a');
    const proc = spawn('nsenter', [`--net=/run/netns/${this.netns}`, '--', process.execPath, CLI_MAIN, 'daemon',
      '--data-dir', this.dataDir, '--socket', this.socket, '--cgroup-parent', this.cgroupParent,
      // Names outside the swarm go to the host's own loopback: nothing from a test leaves its namespaces.
      '--listen-addr', this.addr, '--hostname', this.name, '--dns-upstream', '127.0.0.1:53',
      '--network-prefix', networkPrefixOf(this.netns), ...this.daemonArgs], {
      // Its own process group: a Ctrl-C on the harness reaches the harness only, which then
      // stops every daemon itself.
      detached: true, stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.proc = proc;
    this.state = 'running';
    this.exited = new Promise((r) => proc.once('exit', () => { if (this.proc === proc) this.state = 'stopped'; r(); }));
    this.onPid();
    const deadline = Date.now() + 20_000;
    while (!existsSync(this.socket)) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${this.name}: daemon exited (${proc.exitCode ?? proc.signalCode}): ${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: daemon did not create its socket within 20 s: ${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL, as a crash or power loss would; containers keep running under their shims. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || this.state === 'stopped') return;
    proc.kill('SIGKILL');
    await this.exited;
    this.state = 'stopped';
  }

  /** SIGSTOP: the daemon hangs (a stalled VM), its connections stay open. */
  stop(): void {
    if (this.state !== 'running') return;
    this.proc!.kill('SIGSTOP');
    this.state = 'paused';
  }

  cont(): void {
    if (this.state !== 'paused') return;
    this.proc!.kill('SIGCONT');
    this.state = 'running';
  }

  async restart(): Promise<void> {
    if (this.state === 'paused') this.cont();
    await this.kill();
    await this.start();
  }

  /** Graceful stop (SIGTERM), SIGKILL after 5 s. */
  async shutdown(): Promise<void> {
    const proc = this.proc;
    if (!proc || this.state === 'stopped') return;
    if (this.state === 'paused') this.cont();
    proc.kill('SIGTERM');
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
    if ((this.state as DaemonState) !== 'stopped') await this.kill();
  }

  /** Runs the CLI against this host's daemon (from the root namespace: the socket is a file). */
  cli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
    return new Promise((resolvePromise) => {
      execFile(process.execPath, [CLI_MAIN, '-H', `unix://${this.socket}`, ...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolvePromise({ code, stdout, stderr });
        });
    });
  }

  /**
   * Runs a command inside this host's network namespace (only the network namespace: the mounts
   * and cgroups are the machine's), e.g. `ip -br addr`, or a TCP probe of another host.
   */
  exec(cmd: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
    return new Promise((resolvePromise) => {
      execFile('nsenter', [`--net=/run/netns/${this.netns}`, '--', cmd, ...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 },
        (err, stdout, stderr) => resolvePromise({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
  }

  /** Like cli() but throws with the daemon's words when the command fails. */
  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.cli(args, timeoutMs);
    if (r.code !== 0) throw new CliError(args, r);
    return r.stdout;
  }

  async json<T = any>(args: string[]): Promise<T> {
    return JSON.parse(await this.ok([...args, '--format', 'json'])) as T;
  }

  /**
   * This node's view of the swarm over gRPC (no CLI process: cheap enough to poll every few ms
   * while timing a failover). undefined when the daemon does not answer in time.
   */
  swarmInfo(timeoutMs = 1000): Promise<{ nodeId: string; role: string; leaderAddr: string; managers: string[] } | undefined> {
    if (this.state !== 'running') return Promise.resolve(undefined);
    if (!this.swarmClient) {
      const Ctor = serviceClient('control.proto', 'tsswarm.swarm.v1.SwarmAPI');
      this.swarmClient = new Ctor(`unix:${this.socket}`, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 300 }) as grpc.Client & Record<string, Function>;
    }
    const client = this.swarmClient;
    return new Promise((res) => {
      client['Inspect']!({}, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, info: any) => res(err ? undefined : info));
    });
  }

  /** One ControlAPI call on this host's socket (for probes that poll: no CLI process per call). */
  control<T = any>(method: string, request: object, timeoutMs = 5000): Promise<T> {
    if (!this.controlClient) {
      const Ctor = serviceClient('control.proto', 'tsswarm.swarm.v1.ControlAPI');
      this.controlClient = new Ctor(`unix:${this.socket}`, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 300 }) as grpc.Client & Record<string, Function>;
    }
    const client = this.controlClient;
    return new Promise((res, rej) => {
      client[method]!(request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, out: T) => (err ? rej(new Error(`${this.name} ${method}: ${err.details || err.message}`)) : res(out)));
    });
  }

  closeClients(): void {
    this.swarmClient?.close();
    this.swarmClient = undefined;
    this.controlClient?.close();
    this.controlClient = undefined;
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
