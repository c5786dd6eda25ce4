/**
 * The worker's agent: keeps one session with the leader's dispatcher, hands its assignments to the
 * task executor, heartbeats, and sends task status changes in batches. When the session drops it
 * goes to the leader the refusal named, else to the next manager it knows, with backoff.
 */
import { arch, cpus, hostname, totalmem } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { CHANNEL_OPTIONS } from '../ca/tls-credentials.js';
import type { NetworkDriver } from '../network/types.js';
import { networkStateFromWire } from '../network/wire-state.js';
import type { TaskExecutor } from './task-executor.js';
import type { WireAssignment, WireNetworkAttachment, WireSessionMessage, WireTaskStatus } from './wire.js';

export interface AgentOptions {
  managers: string[];
  credentials: grpc.ChannelCredentials;
  /** This node's address as other nodes see it. */
  addr: string;
  logger: Logger;
  engineLabels?: Record<string, string>;
  /** The node's name in the swarm (several test hosts share one machine's hostname). */
  hostname: string;
  /** IP:PORT of this node's cluster listener. */
  advertiseAddr: string;
  /** Told the role the swarm wants this node in (promote/demote) with every session message. */
  onRole?: (role: 'manager' | 'worker', raftId: number) => void;
  /** Builds the overlay networks the managers describe; without it, the node joins none. */
  network?: Pick<NetworkDriver, 'apply'>;
  /** Told the node's standalone-container network attachments (they run nothing on the executor). */
  onAttachments?: (assignments: WireAssignment[], full: boolean) => void;
}

type DispatcherClient = grpc.Client & Record<string, Function>;

export function nodeDescription(name = hostname(), engineLabels: Record<string, string> = {}) {
  return {
    hostname: name,
    platform: { os: 'linux', arch: arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch() },
    resources: { nanoCpus: cpus().length * 1e9, memoryBytes: totalmem(), generic: {} },
    engineLabels,
  };
}

export class Agent {
  private managers: string[];
  private next = 0;
  private client?: DispatcherClient;
  private session?: grpc.ClientReadableStream<WireSessionMessage>;
  private sessionId = '';
  private heartbeatTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  private readonly pending = new Map<string, WireTaskStatus>();
  private stopped = false;
  private preferred?: string;
  private connected?: string;
  private failures = 0;
  /** Session messages are applied in order: a network's state before the tasks that join it. */
  private applying = Promise.resolve();
  /** The networks of the last network state applied, and who waits for one of them. */
  private appliedNetworks = new Set<string>();
  private networkWaiters = new Set<() => void>();
  executor!: TaskExecutor;

  constructor(private readonly opts: AgentOptions) {
    this.managers = [...opts.managers];
  }

  /** Where the executor sends status changes. */
  readonly report = (taskId: string, status: WireTaskStatus): void => {
    this.pending.set(taskId, status);
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 20);
  };

  start(executor: TaskExecutor): void {
    this.executor = executor;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.flushTimer);
    this.session?.cancel();
    this.client?.close();
  }

  /** The manager the session is with, if any. */
  currentManager(): string | undefined {
    return this.connected;
  }

  knownManagers(): string[] {
    return [...this.managers];
  }

  /** Asks the managers for a standalone container's place on an attachable network. */
  attachNetwork(req: { network: string; containerId: string; containerName: string }): Promise<WireNetworkAttachment> {
    return this.dispatcherCall('AttachNetwork', req);
  }

  detachNetwork(taskId: string): Promise<void> {
    return this.dispatcherCall('DetachNetwork', { taskId });
  }

  /** Resolves once the network state applied on this node includes `networkId`. */
  async networkReady(networkId: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.appliedNetworks.has(networkId)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`network ${networkId} was not set up on this node within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = () => { clearTimeout(timer); this.networkWaiters.delete(wake); resolve(); };
        const timer = setTimeout(wake, left);
        this.networkWaiters.add(wake);
      });
    }
  }

  private networksApplied(ids: string[]): void {
    this.appliedNetworks = new Set(ids);
    for (const wake of [...this.networkWaiters]) wake();
  }

  private dispatcherCall<T>(method: string, request: object): Promise<T> {
    const client = this.client;
    if (!client || !this.sessionId) return Promise.reject(new Error('this node has no session with a manager (is it in a swarm, and is a manager reachable?)'));
    return new Promise((resolve, reject) => {
      client[method]!({ ...request, sessionId: this.sessionId }, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(new Error(err.details || err.message));
        else resolve(res);
      });
    });
  }

  private pickManager(): string {
    if (this.preferred) {
      const p = this.preferred;
      this.preferred = undefined;
      return p;
    }
    const addr = this.managers[this.next % this.managers.length]!;
    this.next++;
    return addr;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const addr = this.pickManager();
    this.client?.close();
    const Ctor = serviceClient('control.proto', 'tsswarm.swarm.v1.Dispatcher');
    const client = new Ctor(addr, this.opts.credentials, CHANNEL_OPTIONS) as DispatcherClient;
    this.client = client;
    const session = client.Session!({
      description: nodeDescription(this.opts.hostname, this.opts.engineLabels), addr: this.opts.addr, advertiseAddr: this.opts.advertiseAddr,
    }) as grpc.ClientReadableStream<WireSessionMessage>;
    this.session = session;
    let opened = false;
    session.on('data', (msg: WireSessionMessage) => {
      if (!opened) {
        opened = true;
        this.failures = 0;
        this.connected = addr;
        this.opts.logger.info({ manager: addr }, 'session with the dispatcher open');
      }
      this.sessionId = msg.sessionId;
      if (msg.managers.length) this.managers = msg.managers;
      this.armHeartbeat(client, msg.heartbeatPeriodMs);
      this.flush();
      const networkState = msg.networkState;
      this.applying = this.applying.then(async () => {
        if (networkState && this.opts.network) {
          const state = networkStateFromWire(networkState);
          await this.opts.network.apply(state)
            .then(() => this.networksApplied(state.networks.map((n) => n.id)))
            .catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'applying the network state failed'));
        }
        const attachments = msg.assignments.filter((a) => a.task.attachment);
        if (attachments.length > 0 || msg.full) this.opts.onAttachments?.(attachments, msg.full);
        await this.executor.assign(attachments.length > 0 ? msg.assignments.filter((a) => !a.task.attachment) : msg.assignments, msg.full);
      }).catch((err) => this.opts.logger.warn({ err }, 'applying assignments failed'));
      if (msg.nodeRole) this.opts.onRole?.(msg.nodeRole, msg.raftId);
    });
    session.on('error', (err: grpc.ServiceError) => {
      if (session !== this.session || this.stopped) return;
      this.session = undefined; // 'end' may follow: reconnect once
      const leader = /the leader is at (\S+)/.exec(err.details ?? '')?.[1];
      if (leader) this.preferred = leader;
      this.opts.logger.warn({ manager: addr, err: err.details || err.message }, 'session lost; reconnecting');
      this.reconnectSoon();
    });
    session.on('end', () => {
      if (session !== this.session || this.stopped) return;
      this.session = undefined;
      this.reconnectSoon();
    });
  }

  private reconnectSoon(): void {
    this.connected = undefined;
    this.sessionId = '';
    clearInterval(this.heartbeatTimer);
    this.failures++;
    const delay = this.preferred ? 0 : Math.min(2000, 100 * 2 ** Math.min(this.failures, 5));
    setTimeout(() => void this.connect(), delay);
  }

  private armHeartbeat(client: DispatcherClient, periodMs: number): void {
    clearInterval(this.heartbeatTimer);
    const period = Math.max(100, periodMs || 5000);
    this.heartbeatTimer = setInterval(() => {
      client.Heartbeat!({ sessionId: this.sessionId }, { deadline: Date.now() + period }, (err: grpc.ServiceError | null) => {
        // The dispatcher forgot us, or its manager no longer leads: start over.
        if (err && (err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.UNAVAILABLE)) {
          const leader = /the leader is at (\S+)/.exec(err.details ?? '')?.[1];
          if (leader) this.preferred = leader;
          this.session?.cancel();
          this.reconnectSoon();
        }
      });
    }, period);
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (!this.sessionId || !this.client || this.pending.size === 0) return;
    const updates = [...this.pending].map(([taskId, status]) => ({ taskId, status }));
    this.pending.clear();
    this.client.UpdateTaskStatus!({ sessionId: this.sessionId, updates }, (err: grpc.ServiceError | null) => {
      if (!err) return;
      // Keep the newest status of each task for the next session.
      for (const u of updates) if (!this.pending.has(u.taskId)) this.pending.set(u.taskId, u.status);
      this.opts.logger.debug({ err: err.details }, 'status update failed; will resend');
    });
  }
}
