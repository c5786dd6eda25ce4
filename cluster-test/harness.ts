/**
 * Many tsswarm hosts on one machine: createCluster() builds a fabric of network namespaces, starts
 * a daemon in each, loads the test image and forms a swarm (managers first, then workers). Faults:
 * kill -9, SIGSTOP/SIGCONT and restart of any daemon, partitions between any sets of hosts.
 * destroy() removes every namespace, process, container, mount, cgroup and file the run made; it
 * also runs on SIGINT/SIGTERM, and cleanupLeftovers() finds what a killed harness left behind.
 *
 *   const c = await createCluster({ hosts: 6, managers: 3 });
 *   await c.hosts[0].cli(['service', 'create', ...]);
 *   await c.partition([leader], c.managers().filter((m) => m !== leader));
 *   await c.heal();
 *   await c.destroy();
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Fabric, freeRunId, hostNetns, listNetns, PREFIX, removeRunNamespaces, run, runLayout } from '../testkit/fabric.js';
import { Host, networkPrefixOf, REPO } from './host.js';
import { runtimeStateRoot } from '../src/engine/runtime/state-root.js';
import { networkScratchDir } from '../src/network/driver.js';

export { Host, CliError, type CliResult } from './host.js';

export const IMAGE = 'demo/busybox:latest';
const STATE_DIR = `/run/${PREFIX}`;
const WORK_ROOT = `/var/tmp/${PREFIX}`;

export interface ClusterOptions {
  /** number of test hosts (default 6) */
  hosts?: number;
  /** how many of them are managers (the first ones; default 3) */
  managers?: number;
  /** `swarm init --dispatcher-heartbeat` (default: the swarm's default, 5 s) */
  heartbeat?: string;
  /** import the busybox test image on every host (default true), or on the first host only ('first') */
  loadImage?: boolean | 'first';
  /** form the swarm (default true); false leaves bare daemons */
  formSwarm?: boolean;
  /**
   * Extra `tsswarm daemon` flags for every host; as a function of the run's addresses when they name
   * a test host (the run id, hence the subnet, is chosen when the cluster is built), e.g.
   * `(ip) => ['--insecure-registry', `${ip(1)}:5000`]`.
   */
  daemonArgs?: string[] | ((hostIp: (index: number) => string) => string[]);
  /** copy every daemon's log here before teardown (default: $CLUSTER_TEST_LOGS, else not kept) */
  keepLogs?: string;
  log?: (line: string) => void;
}

/** What a run leaves behind for cleanupLeftovers() to find, should the harness die. */
interface RunRecord {
  runId: number;
  ownerPid: number;
  workDir: string;
  hosts: { name: string; pid?: number; dataDir: string; cgroupParent: string }[];
  /** other processes the run started (a registry on a test host...), each with a word of its command line */
  processes?: OwnedProcess[];
}

/** A process a run owns besides its daemons: killed by PID on teardown if its command line still has `marker`. */
export interface OwnedProcess {
  pid: number;
  marker: string;
}

const live = new Set<Cluster>();
let handlersInstalled = false;

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\ncluster-test: ${signal}: tearing down ${live.size} cluster(s)\n`);
      void Promise.allSettled([...live].map((c) => c.destroy())).finally(() => process.exit(130));
    });
  }
}

export class Cluster {
  readonly hosts: Host[] = [];
  /** processes started for this run besides the daemons (see own()) */
  readonly processes: OwnedProcess[] = [];
  readonly workDir: string;
  private readonly fabric: Fabric;
  private destroyed = false;
  readonly log: (line: string) => void;

  constructor(readonly runId: number, readonly opts: ClusterOptions) {
    this.fabric = new Fabric(runLayout(runId));
    this.workDir = join(WORK_ROOT, String(runId));
    this.log = opts.log ?? (() => {});
  }

  managers(): Host[] {
    return this.hosts.filter((h) => h.role === 'manager');
  }

  workers(): Host[] {
    return this.hosts.filter((h) => h.role === 'worker');
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in this cluster`);
    return h;
  }

  /** The busybox rootfs the hosts imported as IMAGE (there once the cluster is built with loadImage). */
  get imageTarball(): string {
    return join(this.workDir, 'busybox.tar');
  }

  /**
   * Makes `pid` part of this run: destroy(), the signal handlers and cleanupLeftovers() of a later
   * run kill it by PID (SIGKILL), if its command line still contains `marker`.
   */
  own(pid: number, marker: string): void {
    this.processes.push({ pid, marker });
    this.record();
  }

  /** The fabric's namespace, for code that wants to look at the wire. */
  get fabricNetns(): string {
    return this.fabric.netns;
  }

  async build(): Promise<void> {
    const count = this.opts.hosts ?? 6;
    const managers = this.opts.managers ?? 3;
    if (count < 1 || managers < 1 || managers > count) throw new Error(`invalid cluster: ${count} hosts, ${managers} managers`);
    mkdirSync(this.workDir, { recursive: true });
    this.record();
    const fabricHosts = await this.fabric.create(count);
    const daemonArgs = typeof this.opts.daemonArgs === 'function' ? this.opts.daemonArgs((i) => this.fabric.hostIp(i)) : this.opts.daemonArgs;
    for (const fh of fabricHosts) {
      const h = new Host(fh.index, fh.netns, fh.ip, this.workDir, fh.index <= managers ? 'manager' : 'worker', daemonArgs);
      h.onPid = () => this.record();
      this.hosts.push(h);
    }
    this.log(`run ${this.runId}: ${count} hosts (${managers} managers) on ${this.fabric.netns}, 10.231.${this.runId}.0/24`);
    await Promise.all(this.hosts.map((h) => h.start()));
    const loadImage = this.opts.loadImage ?? true;
    if (loadImage) {
      await run('bash', [join(REPO, 'scripts/busybox-rootfs.sh'), this.imageTarball]);
      const on = loadImage === 'first' ? this.hosts.slice(0, 1) : this.hosts;
      await Promise.all(on.map((h) => h.ok(['image', 'import', this.imageTarball, IMAGE])));
    }
    if (this.opts.formSwarm ?? true) await this.formSwarm();
  }

  private async formSwarm(): Promise<void> {
    const [first, ...rest] = this.hosts;
    await first!.ok(['swarm', 'init', '--advertise-addr', first!.ip, ...(this.opts.heartbeat ? ['--dispatcher-heartbeat', this.opts.heartbeat] : [])]);
    const managerToken = (await first!.ok(['swarm', 'join-token', '-q', 'manager'])).trim();
    const workerToken = (await first!.ok(['swarm', 'join-token', '-q', 'worker'])).trim();
    // Managers one at a time: each joins as a learner and is promoted before the next one comes.
    for (const h of rest.filter((x) => x.role === 'manager')) {
      await h.ok(['swarm', 'join', '--token', managerToken, first!.addr]);
      await this.waitFor(`${h.name} to be a voting manager`, async () => {
        const nodes = await first!.json<any[]>(['node', 'ls']);
        const n = nodes.find((x) => x.description.hostname === h.name);
        return n?.managerStatus && (n.managerStatus.reachability === 'reachable' || n.managerStatus.leader) ? true : undefined;
      }, 30_000);
    }
    await Promise.all(this.workers().map((h) => h.ok(['swarm', 'join', '--token', workerToken, first!.addr])));
    await this.waitFor('every node ready', async () => {
      const nodes = await first!.json<any[]>(['node', 'ls']);
      return nodes.length === this.hosts.length && nodes.every((n) => n.status.state === 'ready') ? true : undefined;
    }, 30_000);
    this.log(`swarm formed: leader ${first!.name}, managers ${this.managers().map((m) => m.name).join(',')}, workers ${this.workers().map((w) => w.name).join(',')}`);
  }

  /**
   * The manager that leads, as the managers in `among` (default: every running manager) see it:
   * a majority of them must name the same leader, and the leader must agree.
   */
  async leader(opts: { among?: Host[]; timeoutMs?: number; pollMs?: number } = {}): Promise<Host> {
    return this.waitFor('a leader', async () => {
      const among = (opts.among ?? this.managers()).filter((m) => m.state === 'running');
      const seen = await Promise.all(among.map(async (m) => (await m.swarmInfo())?.leaderAddr ?? ''));
      const votes = new Map<string, number>();
      for (const a of seen) if (a) votes.set(a, (votes.get(a) ?? 0) + 1);
      for (const [addr, n] of votes) {
        const h = this.hosts.find((x) => x.addr === addr);
        if (h && n * 2 > among.length && among.includes(h) && seen[among.indexOf(h)] === addr) return h;
      }
      return undefined;
    }, opts.timeoutMs ?? 30_000, opts.pollMs ?? 200);
  }

  /** Cuts `a` off from `b` (both ways unless oneWay: then a's packets to b are lost). */
  async partition(a: Host | Host[], b: Host | Host[], opts: { oneWay?: boolean } = {}): Promise<void> {
    const as = [a].flat();
    const bs = [b].flat();
    await this.fabric.partition(as.map((h) => h.index), bs.map((h) => h.index), opts);
    this.log(`partition: ${as.map((h) => h.name).join(',')} ${opts.oneWay ? '->' : '<->'} ${bs.map((h) => h.name).join(',')} cut`);
  }

  async heal(): Promise<void> {
    await this.fabric.heal();
    this.log('partition healed');
  }

  cuts() {
    return this.fabric.cuts();
  }

  /**
   * A power loss of `h` as the others see it: cut off from every other host (no FIN or RST gets
   * out), then its daemon and every container on it killed. powerOn() heals and restarts it.
   */
  async powerOff(h: Host): Promise<void> {
    await this.partition(h, this.hosts.filter((x) => x !== h));
    await h.kill();
    const killed = killContainers(h.dataDir, h.cgroupParent);
    const deadline = Date.now() + 5000;
    while (killed.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.log(`${h.name} powered off (cut off, daemon and ${killed.length} container processes killed)`);
  }

  async powerOn(h: Host): Promise<void> {
    await this.fabric.unblock(h.index, this.hosts.map((x) => x.index));
    await h.start();
    this.log(`${h.name} powered on`);
  }

  /** Polls `probe` until it returns a value (a throw counts as "not yet"), or fails naming `what`. */
  async waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      const v = await probe().catch((err) => { last = err; return undefined; });
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** Stops every daemon, kills every container, removes mounts, cgroups, namespaces and files. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const h of this.hosts) h.closeClients();
    await Promise.allSettled(this.hosts.map((h) => h.kill()));
    const keep = this.opts.keepLogs ?? process.env.CLUSTER_TEST_LOGS;
    if (keep) {
      const dir = join(keep, `run-${this.runId}`);
      mkdirSync(dir, { recursive: true });
      for (const h of this.hosts) if (existsSync(h.logFile)) copyFileSync(h.logFile, join(dir, `${h.name}.log`));
      this.log(`daemon logs kept in ${dir}`);
    }
    await teardownRun(this.runId, this.workDir, this.hosts.map((h) => ({ dataDir: h.dataDir, cgroupParent: h.cgroupParent })), this.processes);
    live.delete(this);
  }

  private record(): void {
    const rec: RunRecord = {
      runId: this.runId, ownerPid: process.pid, workDir: this.workDir,
      hosts: this.hosts.map((h) => ({ name: h.name, pid: h.pid, dataDir: h.dataDir, cgroupParent: h.cgroupParent })),
      processes: this.processes,
    };
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(join(STATE_DIR, `${this.runId}.json`), JSON.stringify(rec));
  }
}

export async function createCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  await cleanupLeftovers();
  installSignalHandlers();
  const cluster = new Cluster(freeRunId(), opts);
  live.add(cluster);
  try {
    await cluster.build();
  } catch (err) {
    const logs = cluster.hosts.map((h) => `--- ${h.name} (${h.logFile})\n${h.logTail(8)}`).join('\n');
    await cluster.destroy();
    throw new Error(`building the test cluster failed: ${(err as Error).message}\n${logs}`);
  }
  return cluster;
}

// ---------------------------------------------------------------- teardown

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Kills the containers of one data dir by the PIDs their shims recorded (checked against /proc). */
function killContainers(dataDir: string, cgroupParent: string): number[] {
  const killed: number[] = [];
  const dir = join(dataDir, 'containers');
  if (!existsSync(dir)) return killed;
  for (const id of readdirSync(dir)) {
    const read = (f: string) => Number(readFileSync(join(dir, id, f), 'utf8')) || 0;
    let init = 0;
    let shim = 0;
    try { init = read('init.pid'); } catch { /* not started */ }
    try { shim = read('shim.pid'); } catch { /* not started */ }
    // A recycled pid belongs to someone else: the container's init lives in our cgroup, the shim names the container.
    const initOurs = init > 0 && (() => { try { return readFileSync(`/proc/${init}/cgroup`, 'utf8').includes(`/${cgroupParent}/`); } catch { return false; } })();
    for (const [pid, ours] of [[init, initOurs], [shim, shim > 0 && cmdline(shim).includes(id)]] as const) {
      if (ours) {
        try { process.kill(pid, 'SIGKILL'); killed.push(pid); } catch { /* gone */ }
      }
    }
  }
  return killed;
}

function removeCgroups(parent: string): void {
  const root = '/sys/fs/cgroup';
  const rmTree = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) rmTree(join(dir, child.name));
    try { rmdirSync(dir); } catch { /* a process still in it: reported by the caller's check */ }
  };
  for (const controller of readdirSync(root)) rmTree(join(root, controller, parent));
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
  // deepest first
  for (const m of mounts.sort((a, b) => b.length - a.length)) await run('umount', ['-l', m]).catch(() => {});
}

/** SIGKILLs the run's own processes (those whose command line still names them) and waits for them to go. */
async function killOwned(processes: OwnedProcess[]): Promise<void> {
  const mine = processes.filter((p) => pidAlive(p.pid) && cmdline(p.pid).includes(p.marker));
  for (const p of mine) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  const deadline = Date.now() + 5000;
  while (mine.some((p) => pidAlive(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function teardownRun(runId: number, workDir: string, hosts: { dataDir: string; cgroupParent: string; pid?: number }[], processes: OwnedProcess[] = []): Promise<void> {
  await killOwned(processes);
  for (const h of hosts) {
    if (h.pid && pidAlive(h.pid) && cmdline(h.pid).includes(h.dataDir)) {
      try { process.kill(h.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  const killed = hosts.flatMap((h) => killContainers(h.dataDir, h.cgroupParent));
  const deadline = Date.now() + 5000;
  while (killed.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const h of hosts) removeCgroups(h.cgroupParent);
  await unmountUnder(workDir);
  await removeRunNamespaces(runId);
  // the runtime's per-daemon state under /run (src/engine/runtime/state-root.ts), and the network
  // driver's scratch dir, which a daemon killed with SIGKILL leaves behind
  for (const h of hosts) rmSync(runtimeStateRoot(h.dataDir), { recursive: true, force: true });
  for (let i = 1; i <= hosts.length; i++) rmSync(networkScratchDir(networkPrefixOf(hostNetns(runId, i))), { recursive: true, force: true });
  rmSync(workDir, { recursive: true, force: true });
  rmSync(join(STATE_DIR, `${runId}.json`), { force: true });
}

/**
 * Removes what earlier runs left behind: every run whose harness process is gone (all runs with
 * `all`), and namespaces of our prefix that no run claims. Returns the run ids cleaned.
 */
export async function cleanupLeftovers(opts: { all?: boolean } = {}): Promise<number[]> {
  const cleaned: number[] = [];
  const claimed = new Set<number>();
  const records = existsSync(STATE_DIR) ? readdirSync(STATE_DIR).filter((f) => f.endsWith('.json')) : [];
  for (const f of records) {
    let rec: RunRecord;
    try {
      rec = JSON.parse(readFileSync(join(STATE_DIR, f), 'utf8')) as RunRecord;
    } catch {
      rmSync(join(STATE_DIR, f), { force: true });
      continue;
    }
    if (!opts.all && rec.ownerPid !== process.pid && pidAlive(rec.ownerPid) && cmdline(rec.ownerPid).includes('node')) {
      claimed.add(rec.runId);
      continue;
    }
    if (rec.ownerPid === process.pid && [...live].some((c) => c.runId === rec.runId)) {
      claimed.add(rec.runId);
      continue;
    }
    await teardownRun(rec.runId, rec.workDir, rec.hosts, rec.processes);
    cleaned.push(rec.runId);
  }
  for (const ns of listNetns()) {
    const m = /^tswct(\d+)-(fab|h\d+)$/.exec(ns) ?? /^c(\d+)h\d+-/.exec(ns);
    if (!m || claimed.has(Number(m[1]))) continue;
    await removeRunNamespaces(Number(m[1]));
    if (!cleaned.includes(Number(m[1]))) cleaned.push(Number(m[1]));
  }
  return cleaned;
}
