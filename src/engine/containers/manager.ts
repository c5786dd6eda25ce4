/**
 * The containers of this node: create, start, stop, exits and restarts (restart-policy.ts), adoption after a daemon
 * restart (adoption.ts). Each container lives in <data-dir>/containers/<id>/ (container.json, config.json, the
 * overlay's upper and work dirs, the json log and the shim's pid and exit files); the shim, not the
 * daemon, is the container's parent, so the daemon can die and come back without touching it.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { access, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../../durable-file.js';
import { buildOciSpec, resolveCommand, type ImageRuntimeConfig } from '../runtime/oci-spec.js';
import { parseSecurityOpts } from '../runtime/seccomp.js';
import type { RuntimeDriver } from '../runtime/driver.js';
import { findLeftovers } from './adoption.js';
import { resolveIdentity } from './identity.js';
import { readLogBatches, readLogs, type LogEntry, type LogReadOptions } from './logs.js';
import { randomContainerName } from './names.js';
import { restartDelayMs, shouldRestart } from './restart-policy.js';
import { ContainerError, type ContainerRecord, type ContainerSpec, type ExitRecord, type PortMapping } from '../../api/container.js';

/** What the manager needs of the image store. */
export interface ImageLookup {
  resolve(ref: string): { id: string; config: ImageRuntimeConfig & { stopSignal?: string } } | undefined;
  lowerDirs(image: { id: string }): string[];
}

export interface ContainerManagerOptions {
  dataDir: string;
  images: ImageLookup;
  runtime: RuntimeDriver;
  cgroupParent: string;
  log: Logger;
  /** The single-host bridge network (`--network bridge`); without it such containers are refused. */
  bridge?: {
    connect(containerId: string, hostname: string, ports: PortMapping[]): Promise<{ netnsPath: string; resolvConf: string; hosts: string }>;
    disconnect(containerId: string): Promise<void>;
  };
  /**
   * Swarm networks (`--network NAME` of an attachable overlay): the managers give the container an
   * address and the node's network driver a namespace for it. Without it such containers are refused.
   */
  swarmNetworks?: {
    connect(request: { containerId: string; containerName: string; hostname: string; network: string }): Promise<NonNullable<ContainerSpec['sandbox']>>;
    disconnect(attachment: NonNullable<NonNullable<ContainerSpec['sandbox']>['attachment']>): Promise<void>;
  };
  /**
   * How often every running container is checked for an exit record that no inotify event announced
   * (default 2 s). The kernel drops events when the daemon's one inotify queue overflows, which a
   * container writing its log fast while the event loop is busy can cause; without this check its
   * exit, or any other container's, could go unseen for good.
   */
  exitSweepMs?: number;
  /** false: no inotify watch at all, only the sweep (tests of the sweep). */
  watchExits?: boolean;
}

export interface LogRequest { follow: boolean; tail: number; signal?: AbortSignal }

/** The networks a container can name that are this node's own rather than the swarm's. */
const LOCAL_NETWORKS = new Set(['none', 'host', 'bridge']);

interface Live {
  record: ContainerRecord;
  watcher?: FSWatcher;
  exited: Deferred<ExitRecord>;
  restartTimer?: NodeJS.Timeout;
  /** Serialises lifecycle operations on one container (start vs. exit handling vs. remove). */
  busy: Promise<unknown>;
  /** Set once an automatic removal (--rm) is under way. */
  removal?: Promise<void>;
  /** A health check's process file by its command: written once, run at every interval. */
  checkFiles?: Map<string, Promise<string>>;
}

class Deferred<T> {
  resolve!: (v: T) => void;
  readonly promise = new Promise<T>((r) => { this.resolve = r; });
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class ContainerManager {
  private readonly containers = new Map<string, Live>();
  private readonly dir: string;
  private closed = false;
  private sweepTimer?: NodeJS.Timeout;

  private constructor(private readonly opts: ContainerManagerOptions) {
    this.dir = join(opts.dataDir, 'containers');
  }

  static async open(opts: ContainerManagerOptions): Promise<ContainerManager> {
    const mgr = new ContainerManager(opts);
    await mkdir(mgr.dir, { recursive: true });
    await mgr.adopt();
    mgr.sweepTimer = setInterval(() => mgr.sweepExits(), opts.exitSweepMs ?? 2000);
    mgr.sweepTimer.unref();
    return mgr;
  }

  /** Stops watching; containers keep running under their shims. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const live of this.containers.values()) {
      live.watcher?.close();
      if (live.restartTimer) clearTimeout(live.restartTimer);
    }
  }

  list(all: boolean): ContainerRecord[] {
    const out = [...this.containers.values()].map((l) => l.record);
    out.sort((a, b) => b.created.localeCompare(a.created));
    return all ? out : out.filter((r) => r.state.status === 'running' || r.state.status === 'paused' || r.state.status === 'restarting');
  }

  get(ref: string): ContainerRecord {
    return this.find(ref).record;
  }

  inUseImageIds(): Set<string> {
    return new Set([...this.containers.values()].map((l) => l.record.imageId));
  }

  async create(spec: ContainerSpec): Promise<ContainerRecord> {
    const image = this.opts.images.resolve(spec.image);
    if (!image) throw new ContainerError(`No such image: ${spec.image}`, 'not-found');
    const name = spec.name || randomContainerName((n) => this.byName(n) !== undefined);
    if (!NAME_RE.test(name)) throw new ContainerError(`Invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, 'invalid');
    const clash = this.byName(name);
    if (clash) throw new ContainerError(`Conflict. The container name "/${name}" is already in use by container "${clash.record.id}"`, 'conflict');

    const id = randomBytes(32).toString('hex');
    const hostname = spec.hostname || id.slice(0, 12);
    const full: ContainerSpec = { ...spec, name, hostname, stopSignal: spec.stopSignal || image.config.stopSignal || 'SIGTERM' };
    const command = resolveCommand(full, image.config);
    if (command.length === 0) throw new ContainerError('no command specified: the image has no Cmd or Entrypoint and none was given', 'invalid');
    try {
      parseSecurityOpts(spec.securityOpt ?? []);
    } catch (err) {
      throw new ContainerError((err as Error).message, 'invalid');
    }

    if (spec.network === 'bridge' && !this.opts.bridge) {
      throw new ContainerError('the bridge network is off on this daemon (it runs with --network-driver none)', 'invalid');
    }
    const onSwarmNetwork = !LOCAL_NETWORKS.has(spec.network);
    if (onSwarmNetwork && !this.opts.swarmNetworks) {
      throw new ContainerError(`network ${spec.network} not found: this daemon joins no swarm networks (it runs with --network-driver none)`, 'not-found');
    }
    if (onSwarmNetwork && spec.ports.length > 0) {
      throw new ContainerError('ports can only be published on the bridge network: publish a service\'s ports on a swarm network (service create --publish)', 'invalid');
    }
    const lowerDirs = this.opts.images.lowerDirs(image);
    const identity = resolveIdentity(full.user || image.config.user, lowerDirs);
    const cdir = join(this.dir, id);
    const record: ContainerRecord = {
      id, name, image: spec.image, imageId: image.id, spec: full, command,
      state: { status: 'created', pid: 0, exitCode: 0, oomKilled: false, error: '', startedAt: '', finishedAt: '', restartCount: 0 },
      created: new Date().toISOString(), bundle: cdir, logPath: join(cdir, 'container.log'), stoppedByUser: false,
    };
    // Reserve the name before the first await so that two concurrent creates cannot both take it.
    const live: Live = { record, exited: new Deferred(), busy: Promise.resolve() };
    this.containers.set(id, live);
    try {
      if (full.network === 'bridge') {
        const endpoint = await this.opts.bridge!.connect(id, hostname, full.ports).catch((err: Error) => {
          throw new ContainerError(`cannot connect to the bridge network: ${err.message}`, 'invalid');
        });
        // As docker's bridge: the host's resolvers, reached through the masquerading gateway.
        full.sandbox = { ...endpoint, resolvConf: await hostResolvConf('host') };
      } else if (onSwarmNetwork) {
        full.sandbox = await this.opts.swarmNetworks!.connect({ containerId: id, containerName: name, hostname, network: spec.network }).catch((err: Error) => {
          throw new ContainerError(err.message, /not found/.test(err.message) ? 'not-found' : 'invalid');
        });
      }
      await mkdir(join(cdir, 'rootfs'), { recursive: true });
      await Promise.all([mkdir(join(cdir, 'upper')), mkdir(join(cdir, 'work'))]);
      const etc = { hosts: join(cdir, 'hosts'), hostname: join(cdir, 'hostname'), resolvConf: join(cdir, 'resolv.conf') };
      await Promise.all([
        writeFile(etc.hosts, full.sandbox?.hosts ?? `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`),
        writeFile(etc.hostname, `${hostname}\n`),
        writeFile(etc.resolvConf, full.sandbox?.resolvConf ?? await hostResolvConf(full.network)),
      ]);
      const oci = buildOciSpec({
        id, spec: full, image: image.config, rootfs: join(cdir, 'rootfs'),
        uid: identity.uid, gid: identity.gid, additionalGids: identity.additionalGids,
        cgroupsPath: `/${this.opts.cgroupParent}/${id}`, etcFiles: etc,
      });
      await writeFile(join(cdir, 'config.json'), JSON.stringify(oci));
      await this.save(record, true);
    } catch (err) {
      this.containers.delete(id);
      if (full.network === 'bridge') await this.opts.bridge!.disconnect(id).catch(() => {});
      if (full.sandbox?.attachment) await this.opts.swarmNetworks!.disconnect(full.sandbox.attachment).catch(() => {});
      await rm(cdir, { recursive: true, force: true });
      throw err;
    }
    this.opts.log.info({ id, name, image: spec.image }, 'container created');
    return record;
  }

  async start(ref: string): Promise<ContainerRecord> {
    const live = this.find(ref);
    return this.serialise(live, () => this.startLocked(live, false));
  }

  private async startLocked(live: Live, isRestart: boolean): Promise<ContainerRecord> {
    const r = live.record;
    if (r.state.status === 'running' || r.state.status === 'paused') return r;
    if (r.state.status === 'restarting' && !isRestart) return r;
    if (live.restartTimer) { clearTimeout(live.restartTimer); live.restartTimer = undefined; }
    const image = this.opts.images.resolve(r.imageId);
    if (!image) throw new ContainerError(`image ${r.image} (${r.imageId.slice(0, 19)}) of container ${r.name} was removed`, 'conflict');
    await Promise.all(['exit.json', 'init.pid', 'shim.pid'].map((f) => unlink(join(r.bundle, f)).catch(() => {})));
    live.exited = new Deferred();
    r.stoppedByUser = false;
    this.watch(live);
    try {
      await this.opts.runtime.start({
        id: r.id, bundle: r.bundle, stateDir: r.bundle, logPath: r.logPath,
        overlay: { lower: this.opts.images.lowerDirs(image), upper: join(r.bundle, 'upper'), work: join(r.bundle, 'work') },
      });
    } catch (err) {
      live.watcher?.close();
      live.watcher = undefined;
      r.state = { ...r.state, status: 'exited', exitCode: 128, error: (err as Error).message, finishedAt: new Date().toISOString() };
      await this.save(r, false);
      throw new ContainerError(`cannot start container ${r.name}: ${(err as Error).message}`, 'runtime');
    }
    const pid = Number(await readFile(join(r.bundle, 'init.pid'), 'utf8').catch(() => '0'));
    r.state = {
      ...r.state, status: 'running', pid, exitCode: 0, oomKilled: false, error: '',
      startedAt: new Date().toISOString(), finishedAt: '',
    };
    await this.save(r, false);
    // The container may have exited before the watch saw exit.json appear.
    void this.checkExit(live);
    return r;
  }

  /** Resolves with the exit of the current (or next) run of the container. */
  async wait(ref: string): Promise<ExitRecord> {
    const live = this.find(ref);
    const s = live.record.state.status;
    if (s === 'exited' || s === 'dead' || s === 'created') {
      return { exitCode: live.record.state.exitCode, signal: null, oomKilled: live.record.state.oomKilled, finishedAt: live.record.state.finishedAt, error: live.record.state.error };
    }
    return live.exited.promise;
  }

  /** Resolves once a container created with --rm is gone (at once for any other). */
  async removed(id: string): Promise<void> {
    await this.containers.get(id)?.removal;
  }

  /** Promise that settles when the current run ends, for log followers. */
  exitOf(ref: string): Promise<ExitRecord> {
    return this.find(ref).exited.promise;
  }

  async stop(ref: string, timeoutSeconds?: number): Promise<ContainerRecord> {
    const live = this.find(ref);
    const r = live.record;
    r.stoppedByUser = true;
    if (live.restartTimer) {
      clearTimeout(live.restartTimer);
      live.restartTimer = undefined;
      r.state.status = 'exited';
      await this.save(r, false);
      return r;
    }
    if (r.state.status !== 'running' && r.state.status !== 'paused') return r;
    if (r.state.status === 'paused') await this.unpause(ref);
    const grace = (timeoutSeconds ?? r.spec.stopTimeout ?? 10) * 1000;
    this.signal(r, r.spec.stopSignal || 'SIGTERM');
    const exited = await Promise.race([live.exited.promise.then(() => true), sleep(grace).then(() => false)]);
    if (!exited) {
      this.opts.log.info({ id: r.id, graceMs: grace }, 'container did not stop in time: sending SIGKILL');
      this.signal(r, 'SIGKILL');
      await live.exited.promise;
    }
    await live.busy;
    return r;
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<ContainerRecord> {
    const live = this.find(ref);
    const r = live.record;
    if (r.state.status !== 'running' && r.state.status !== 'paused') {
      throw new ContainerError(`Container ${r.name} is not running`, 'conflict');
    }
    const sig = normaliseSignal(signal);
    if (sig === 'SIGKILL' || sig === 'SIGTERM') r.stoppedByUser = true;
    this.signal(r, sig);
    if (sig === 'SIGKILL') {
      await live.exited.promise;
      await live.busy;
    }
    return r;
  }

  async pause(ref: string): Promise<ContainerRecord> {
    const live = this.find(ref);
    const r = live.record;
    if (r.state.status !== 'running') throw new ContainerError(`Container ${r.name} is not running`, 'conflict');
    await this.opts.runtime.commandOrThrow(['pause', r.id]);
    r.state.status = 'paused';
    await this.save(r, false);
    return r;
  }

  async unpause(ref: string): Promise<ContainerRecord> {
    const live = this.find(ref);
    const r = live.record;
    if (r.state.status !== 'paused') throw new ContainerError(`Container ${r.name} is not paused`, 'conflict');
    await this.opts.runtime.commandOrThrow(['resume', r.id]);
    r.state.status = 'running';
    await this.save(r, false);
    return r;
  }

  async remove(ref: string, force: boolean): Promise<void> {
    const live = this.find(ref);
    const r = live.record;
    if ((r.state.status === 'running' || r.state.status === 'paused') && !force) {
      throw new ContainerError(`You cannot remove a ${r.state.status} container ${r.id.slice(0, 12)}. Stop the container before attempting removal or force remove`, 'conflict');
    }
    r.stoppedByUser = true;
    if (live.restartTimer) clearTimeout(live.restartTimer);
    if (r.state.status === 'running' || r.state.status === 'paused') {
      if (r.state.status === 'paused') await this.opts.runtime.command(['resume', r.id]);
      this.signal(r, 'SIGKILL');
      await Promise.race([live.exited.promise, sleep(5000)]);
    }
    await live.busy;
    await this.destroy(live);
  }

  logs(ref: string, opts: LogRequest): AsyncGenerator<LogEntry> {
    const live = this.find(ref);
    return readLogs(live.record.logPath, this.logReadOptions(live, opts));
  }

  /** logs(), a batch of lines per read of the file: for a stream that sends runs of lines as one message. */
  logBatches(ref: string, opts: LogRequest): AsyncGenerator<LogEntry[]> {
    const live = this.find(ref);
    return readLogBatches(live.record.logPath, this.logReadOptions(live, opts));
  }

  private logReadOptions(live: Live, opts: LogRequest): LogReadOptions {
    const running = ['running', 'paused', 'restarting'].includes(live.record.state.status);
    return { follow: opts.follow && running, tail: opts.tail, finished: this.settledAfterExit(live), signal: opts.signal };
  }

  /** Starts a process in a running container; the caller streams its output. */
  async exec(ref: string, cmd: string[], env: string[], workingDir: string, user: string) {
    const { id, file } = await this.execProcessFile(ref, cmd, env, workingDir, user);
    const child = this.opts.runtime.exec(id, file);
    child.on('close', () => { void unlink(file).catch(() => {}); });
    return child;
  }

  /**
   * Runs a health check's command in the container: true when it exits 0 within `timeoutMs` (it is
   * killed then). Through the command launcher: checks of every task, every interval, must not each
   * fork the daemon.
   */
  async check(ref: string, cmd: string[], timeoutMs: number): Promise<boolean> {
    try {
      const live = this.find(ref);
      if (live.record.state.status !== 'running') return false;
      // The same command every interval: its process file is written once and stays with the bundle.
      const files = (live.checkFiles ??= new Map());
      const key = cmd.join('\0');
      let file = files.get(key);
      if (!file) {
        file = this.execProcessFile(ref, cmd, [], '', '').then((e) => e.file);
        files.set(key, file);
        file.catch(() => files.delete(key));
      }
      return (await this.opts.runtime.command(['exec', '--process', await file, live.record.id], timeoutMs)).code === 0;
    } catch {
      return false;
    }
  }

  /** The OCI process of an exec, written next to the container's config. */
  private async execProcessFile(ref: string, cmd: string[], env: string[], workingDir: string, user: string): Promise<{ id: string; file: string }> {
    const live = this.find(ref);
    const r = live.record;
    if (r.state.status !== 'running') throw new ContainerError(`Container ${r.name} is not running`, 'conflict');
    if (cmd.length === 0) throw new ContainerError('exec: no command given', 'invalid');
    const oci = JSON.parse(await readFile(join(r.bundle, 'config.json'), 'utf8')) as { process: Record<string, unknown> };
    const image = this.opts.images.resolve(r.imageId);
    const identity = user ? resolveIdentity(user, image ? this.opts.images.lowerDirs(image) : []) : undefined;
    const proc = {
      ...oci.process,
      args: cmd,
      env: [...(oci.process.env as string[]), ...env],
      cwd: workingDir || oci.process.cwd,
      ...(identity ? { user: { uid: identity.uid, gid: identity.gid } } : {}),
    };
    const file = join(r.bundle, `exec-${randomBytes(6).toString('hex')}.json`);
    await writeFile(file, JSON.stringify(proc));
    return { id: r.id, file };
  }

  // ---- internals ----

  private find(ref: string): Live {
    if (!ref) throw new ContainerError('container name or id required', 'invalid');
    const exact = this.containers.get(ref) ?? this.byName(ref.replace(/^\//, ''));
    if (exact) return exact;
    if (/^[0-9a-f]+$/.test(ref)) {
      const matches = [...this.containers.values()].filter((l) => l.record.id.startsWith(ref));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new ContainerError(`multiple containers match id prefix ${ref}: use more characters`, 'invalid');
    }
    throw new ContainerError(`No such container: ${ref}`, 'not-found');
  }

  private byName(name: string): Live | undefined {
    for (const live of this.containers.values()) if (live.record.name === name) return live;
    return undefined;
  }

  private serialise<T>(live: Live, fn: () => Promise<T>): Promise<T> {
    const next = live.busy.then(fn, fn);
    live.busy = next.catch(() => {});
    return next;
  }

  private signal(r: ContainerRecord, signal: string): void {
    if (r.state.pid <= 0) return;
    try {
      process.kill(r.state.pid, normaliseSignal(signal) as NodeJS.Signals);
    } catch (err) {
      // ESRCH: it exited already; the exit watch will record it.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new ContainerError(`cannot signal ${r.name}: ${(err as Error).message}`);
    }
  }

  /** The safety net under the inotify watches: one stat per running container. */
  private sweepExits(): void {
    for (const live of this.containers.values()) {
      const s = live.record.state.status;
      if (s !== 'running' && s !== 'paused') continue;
      access(join(live.record.bundle, 'exit.json')).then(() => this.checkExit(live), () => { /* still running */ });
    }
  }

  private watch(live: Live): void {
    live.watcher?.close();
    if (this.opts.watchExits === false) return;
    try {
      live.watcher = watch(live.record.bundle, (_event, file) => {
        if (file === 'exit.json') void this.checkExit(live);
      });
      live.watcher.on('error', () => {});
    } catch (err) {
      this.opts.log.warn({ id: live.record.id, err }, 'cannot watch container dir; relying on polling');
    }
  }

  /** Reads exit.json if the shim wrote it; applies the exit once. */
  private async checkExit(live: Live): Promise<void> {
    const r = live.record;
    let exit: ExitRecord;
    try {
      exit = JSON.parse(await readFile(join(r.bundle, 'exit.json'), 'utf8')) as ExitRecord;
    } catch {
      return;
    }
    await this.serialise(live, async () => {
      if (r.state.status !== 'running' && r.state.status !== 'paused') return;
      live.watcher?.close();
      live.watcher = undefined;
      await this.applyExit(live, exit);
    }).catch((err) => this.opts.log.warn({ id: r.id, err: (err as Error).message }, 'recording the container\'s exit failed; exit.json keeps it'));
  }

  private async applyExit(live: Live, exit: ExitRecord): Promise<void> {
    const r = live.record;
    r.state = {
      ...r.state, status: 'exited', pid: 0, exitCode: exit.exitCode, oomKilled: exit.oomKilled,
      error: exit.error ?? '', finishedAt: exit.finishedAt || new Date().toISOString(),
    };
    this.opts.log.info({ id: r.id, name: r.name, exitCode: exit.exitCode, oomKilled: exit.oomKilled }, 'container exited');
    const restart = shouldRestart(r) && !this.closed;
    // Everything a waiter looks at is decided before the first await, so that `run --rm` never
    // sees "exited" without also seeing the removal under way. exit.json stays the durable record.
    if (restart) {
      r.state.status = 'restarting';
      const delay = restartDelayMs(r.state.restartCount);
      live.restartTimer = setTimeout(() => {
        live.restartTimer = undefined;
        r.state.restartCount++;
        this.serialise(live, () => this.startLocked(live, true)).catch((err) => {
          this.opts.log.warn({ id: r.id, err: (err as Error).message }, 'restart failed');
        });
      }, delay);
    }
    const saved = this.save(r, false);
    if (!restart && r.spec.autoRemove) {
      // After the record is written: removing the directory under a write in flight fails both.
      live.removal = saved.catch(() => {})
        .then(() => this.destroy(live))
        .catch((err) => this.opts.log.warn({ err }, 'auto-remove failed'));
    }
    live.exited.resolve(exit);
    await saved;
  }

  private settledAfterExit(live: Live): Promise<unknown> {
    // Follow until the run ends and is not being restarted.
    return live.exited.promise.then(() => live.busy);
  }

  private async destroy(live: Live): Promise<void> {
    const r = live.record;
    live.watcher?.close();
    // The shim deletes the runtime state and unmounts on exit; a forced delete covers a shim that died
    // (or a delete that failed), and only then is the runtime run: one process less for every --rm.
    if (this.opts.runtime.hasState(r.id)) await this.opts.runtime.command(['delete', '--force', r.id]).catch(() => {});
    await rm(r.bundle, { recursive: true, force: true });
    if (r.spec.network === 'bridge') {
      await this.opts.bridge?.disconnect(r.id).catch((err) => this.opts.log.warn({ id: r.id, err: (err as Error).message }, 'leaving the bridge network failed'));
    }
    const attachment = r.spec.sandbox?.attachment;
    if (attachment) {
      await this.opts.swarmNetworks?.disconnect(attachment).catch((err) => this.opts.log.warn({ id: r.id, network: attachment.networkName, err: (err as Error).message }, 'leaving the swarm network failed'));
    }
    this.containers.delete(r.id);
    this.opts.log.info({ id: r.id, name: r.name }, 'container removed');
  }

  private async save(r: ContainerRecord, durable: boolean): Promise<void> {
    if (!this.containers.has(r.id)) return;
    await writeFileAtomic(join(r.bundle, 'container.json'), JSON.stringify(r), durable);
  }

  /** After a daemon restart: take every container back, and learn what happened while we were away (adoption.ts). */
  private async adopt(): Promise<void> {
    for (const leftover of await findLeftovers(this.dir, this.opts.log)) {
      const { record } = leftover;
      const live: Live = { record, exited: new Deferred(), busy: Promise.resolve() };
      this.containers.set(record.id, live);
      switch (leftover.found) {
        case 'stopped':
          break;
        case 'restart-due':
          record.state.status = 'exited';
          if (shouldRestart(record)) void this.serialise(live, () => this.startLocked(live, true)).catch(() => {});
          break;
        case 'exited':
          await this.applyExit(live, leftover.exit);
          break;
        case 'running':
          this.watch(live);
          void this.checkExit(live);
          this.opts.log.info({ id: record.id, name: record.name }, 'adopted running container');
          break;
        case 'shim-lost':
          record.state = { ...record.state, status: 'dead', pid: 0, error: 'the shim died without recording an exit', finishedAt: new Date().toISOString() };
          await this.save(record, false);
          live.exited.resolve({ exitCode: record.state.exitCode, signal: null, oomKilled: false, finishedAt: record.state.finishedAt, error: record.state.error });
          break;
      }
    }
  }
}

async function hostResolvConf(network: ContainerSpec['network']): Promise<string> {
  if (network === 'none') return '';
  return readFile('/etc/resolv.conf', 'utf8').catch(() => '');
}

const SIGNAL_NUMBERS: Record<string, string> = {
  '1': 'SIGHUP', '2': 'SIGINT', '3': 'SIGQUIT', '9': 'SIGKILL', '10': 'SIGUSR1', '12': 'SIGUSR2', '15': 'SIGTERM',
};

export function normaliseSignal(signal: string): string {
  const s = signal.trim().toUpperCase();
  const name = SIGNAL_NUMBERS[s] ?? (s.startsWith('SIG') ? s : `SIG${s}`);
  if (!(name in constants.signals)) throw new ContainerError(`invalid signal: ${signal}`, 'invalid');
  return name;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
