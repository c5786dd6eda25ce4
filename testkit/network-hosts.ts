/**
 * Test hosts for the network driver on one machine: the test fabric (fabric.ts) with hosts
 * `<tag>-h1..N` at 10.231.0.N/24, each able to run a driver (src/network/host-process.ts) inside.
 * Every namespace made here or by the drivers carries the given names, and destroy() removes them
 * all. Only for tests and benchmarks; it never touches the root namespace's links.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Fabric, removeNamespaces } from './fabric.js';
import type { NodeNetworkState, TaskAttachmentRequest, TaskSandbox } from '../src/network/types.js';

export const UNDERLAY_SUBNET = '10.231.0';

export function hostProcessScript(): string {
  // The driver runs as built JavaScript, whether this module runs from testkit/ (tests) or dist/testkit/.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  const built = join(dir, 'dist', 'src', 'network', 'host-process.js');
  if (!existsSync(built)) throw new Error(`${built} is missing: build first (npx tsc -p tsconfig.build.json)`);
  return built;
}

export class DriverClient {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly stderr: string[] = [];
  private exited: Promise<void>;

  constructor(readonly prefix: string, private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as { id: number; ok: boolean; result?: unknown; error?: string };
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.result);
      else waiter?.reject(new Error(reply.error));
    });
    createInterface({ input: child.stderr! }).on('line', (line) => { this.stderr.push(line); });
    this.exited = new Promise((resolve) => child.once('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error(`driver ${prefix} exited; stderr: ${this.stderr.slice(-5).join(' | ')}`));
      this.waiting.clear();
      resolve();
    }));
  }

  private call<T>(request: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  apply(state: NodeNetworkState): Promise<void> {
    return this.call({ op: 'apply', state });
  }

  attach(taskId: string, hostname: string, attachments: TaskAttachmentRequest[]): Promise<TaskSandbox & { ms: number }> {
    return this.call({ op: 'attach', taskId, hostname, attachments });
  }

  detach(taskId: string): Promise<void> {
    return this.call({ op: 'detach', taskId });
  }

  close(): Promise<void> {
    return this.call({ op: 'close' });
  }

  bridgeConnect(bridge: { index: number; subnet: string }, containerId: string, ports: { protocol: 'tcp' | 'udp'; hostPort: number; containerPort: number }[] = []): Promise<TaskSandbox & { ip: string }> {
    return this.call({ op: 'bridge.connect', bridge, taskId: containerId, hostname: containerId, ports });
  }

  bridgeDisconnect(bridge: { index: number; subnet: string }, containerId: string): Promise<void> {
    return this.call({ op: 'bridge.disconnect', bridge, taskId: containerId });
  }

  bridgeClose(bridge: { index: number; subnet: string }): Promise<void> {
    return this.call({ op: 'bridge.close', bridge });
  }

  /** The cost of one spawn from the driver's process (see host-process.ts). */
  spawnFloor(): Promise<{ trueMs: number; ipMs: number }> {
    return this.call({ op: 'spawnFloor' });
  }

  /** A daemon crash: SIGKILL by PID, nothing cleaned up. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Ends the process: stdin closes (it closes its driver), SIGKILL by PID if it hangs. */
  async stop(): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The network driver's test hosts: a fabric (fabric.ts) whose hosts each run a driver process, and
 * whose teardown also removes every namespace those drivers made (they carry the drivers' prefixes).
 */
export class TestFabric {
  private readonly drivers: DriverClient[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly ownedPrefixes: string[];

  private constructor(readonly tag: string, readonly hostCount: number, private readonly fabric: Fabric) {
    this.ownedPrefixes = [`${tag}-`];
  }

  static async create(tag: string, hostCount: number, underlayMtu = 1500): Promise<TestFabric> {
    if (!/^tsw[a-z]-[a-z0-9]{1,4}$/.test(tag)) throw new Error(`fabric tag ${tag} must look like tswt-xx`);
    const fabric = new TestFabric(tag, hostCount, new Fabric({ prefix: tag, subnet: UNDERLAY_SUBNET, hostLink: 'u0', mtu: underlayMtu }));
    try {
      await fabric.fabric.create(hostCount);
    } catch (err) {
      await fabric.destroy();
      throw err;
    }
    return fabric;
  }

  fabricNetns(): string {
    return this.fabric.netns;
  }

  /** Host i (0-based) of the fabric. */
  host(i: number): string {
    return this.fabric.hostNetns(i + 1);
  }

  address(i: number): string {
    return this.fabric.hostIp(i + 1);
  }

  /** Starts a driver inside host i (same mount namespace as ours, so its namespaces are visible here). */
  startDriver(i: number, prefix: string, options: { resolver?: string; netattach?: string; upstreams?: string[] } = {}): DriverClient {
    this.ownedPrefixes.push(`${prefix}-`);
    const args = [`--net=/run/netns/${this.host(i)}`, process.execPath, hostProcessScript(), '--prefix', prefix];
    if (options.resolver) args.push('--resolver', options.resolver);
    if (options.netattach) args.push('--netattach', options.netattach);
    for (const u of options.upstreams ?? []) args.push('--upstream', u);
    const child = spawn('nsenter', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.processes.push(child);
    const client = new DriverClient(prefix, child);
    this.drivers.push(client);
    return client;
  }

  /** Runs a command inside a namespace (by name or /run/netns path). */
  exec(netns: string, argv: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
    const path = netns.startsWith('/') ? netns : `/run/netns/${netns}`;
    return new Promise((resolve) => {
      const child = spawn('nsenter', [`--net=${path}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 137, stdout, stderr }); });
    });
  }

  /** Starts a long-running process inside a namespace; destroy() kills it by PID. */
  background(netns: string, argv: string[]): ChildProcess {
    const path = netns.startsWith('/') ? netns : `/run/netns/${netns}`;
    const child = spawn('nsenter', [`--net=${path}`, ...argv], { stdio: 'ignore' });
    this.processes.push(child);
    return child;
  }

  /** Namespaces on the machine with one of this fabric's prefixes (hosts, fabric, drivers' sandboxes and tasks). */
  leftovers(): string[] {
    let names: string[] = [];
    try { names = readdirSync('/run/netns'); } catch { /* none */ }
    return names.filter((n) => this.ownedPrefixes.some((p) => n.startsWith(p)));
  }

  async destroy(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.stop().catch(() => {})));
    for (const child of this.processes) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await removeNamespaces((n) => this.ownedPrefixes.some((p) => n.startsWith(p)));
  }
}
