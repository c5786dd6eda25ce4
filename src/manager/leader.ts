/**
 * What only the leader does: run the orchestrators, allocate and schedule tasks, and watch worker
 * heartbeats. Each pass reads the store, decides, and proposes the result; passes run after store
 * changes (debounced) and on a slow timer, so a lost proposal is simply redone by the next pass.
 */
import type { Logger } from 'pino';
import type { ClusterLog } from './state/cluster-log.js';
import { newObjectId } from '../api/ids.js';
import type { Dispatcher } from './dispatcher/dispatcher.js';
import { AllocationError, addressesInUse, attachedNetworkIds, ingressNetwork, NetworkAllocator } from './allocator/allocator.js';
import { isAttachment } from './allocator/attachment.js';
import type { TaskObject } from '../api/objects.js';
import type { Placer } from './orchestrator/placement.js';
import { autoRebalanceActions, requestedRebalanceActions } from './orchestrator/rebalance.js';
import { reconcile } from './orchestrator/reconcile.js';
import { planUpdates } from './orchestrator/updater.js';
import type { Action, ClusterStore } from './state/store.js';

export interface LeaderOptions {
  store: ClusterStore;
  log: ClusterLog;
  dispatcher: Dispatcher;
  placer: Placer;
  logger: Logger;
  taskHistoryLimit: number;
  heartbeatPeriodMs: number;
  nodeMatches?: Parameters<typeof reconcile>[1]['nodeMatches'];
}

const REBALANCE_SETTLE_MS = 1000;
const REBALANCE_GIVE_UP_MS = 120_000;

export class LeaderDuties {
  private timer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private unwatch?: () => void;
  private running = false;
  private again = false;
  private debounce?: NodeJS.Timeout;
  private stopped = false;
  private readonly allocator = new NetworkAllocator();
  /** A pass due when a restart delay, update delay or monitor period ends. */
  private wakeTimer?: NodeJS.Timeout;
  private wakeAt = Infinity;
  /** Nodes that could take tasks at the last pass: one joining them starts an automatic rebalance. */
  private activeNodes?: Set<string>;
  /** An automatic rebalance due from `at`, given up at `until` if services never settle. */
  private rebalance?: { at: number; until: number };

  constructor(private readonly opts: LeaderOptions) {}

  start(): void {
    this.unwatch = this.opts.store.watch(() => this.kick());
    this.timer = setInterval(() => this.kick(), 1000);
    this.heartbeatTimer = setInterval(() => {
      void this.opts.dispatcher.checkHeartbeats().catch((err) => this.opts.logger.warn({ err }, 'heartbeat check failed'));
    }, this.opts.heartbeatPeriodMs);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.unwatch?.();
    clearInterval(this.timer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.debounce);
    clearTimeout(this.wakeTimer);
  }

  /** Runs a pass at `atMs` (epoch ms) unless one is already due earlier. */
  wakeUp(atMs: number): void {
    if (this.stopped || (this.wakeTimer && atMs >= this.wakeAt)) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = atMs;
    this.wakeTimer = setTimeout(() => { this.wakeTimer = undefined; this.wakeAt = Infinity; this.kick(); }, Math.max(0, atMs - Date.now()) + 5);
  }

  /** Runs a pass soon; changes that arrive during a pass cause one more. */
  kick(): void {
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.pass();
    }, 10);
  }

  private async pass(): Promise<void> {
    if (this.running) { this.again = true; return; }
    this.running = true;
    try {
      do {
        this.again = false;
        if (!this.opts.log.isLeader() || this.stopped) return;
        await this.propose(this.allocate(), 'allocate');
        await this.propose(this.orchestrate(), 'orchestrate');
        await this.propose(this.rollingUpdates(), 'rolling update');
        await this.propose(this.requestedRebalances(), 'requested rebalance');
        await this.propose(this.autoRebalance(), 'rebalance');
        await this.propose(this.schedule(), 'schedule');
      } while (this.again && !this.stopped);
    } catch (err) {
      this.opts.logger.warn({ err }, 'leader pass failed; the next one retries');
    } finally {
      this.running = false;
    }
  }

  private async propose(actions: Action[], what: string): Promise<void> {
    if (actions.length === 0) return;
    const r = await this.opts.log.propose({ actions, time: new Date().toISOString() });
    // A conflict means someone wrote in between: the next pass sees the new state and decides again.
    if (!r.ok) { this.opts.logger.debug({ what, err: r.error.message }, 'proposal refused; retrying'); this.again = true; }
  }

  orchestrate(): Action[] {
    const { store } = this.opts;
    return reconcile(
      { services: store.list('service'), nodes: store.list('node'), tasksOfService: (id) => store.tasksOfService(id) },
      // The limit as the cluster has it now (swarm update may change it).
      { now: new Date().toISOString(), newId: newObjectId, taskHistoryLimit: store.list('cluster')[0]?.spec.taskHistoryLimit ?? this.opts.taskHistoryLimit, nodeMatches: this.opts.nodeMatches, wake: (at) => this.wakeUp(at) },
    );
  }

  /** Rolling updates in progress (orchestrator/updater.ts): their state is all in the store. */
  rollingUpdates(): Action[] {
    const { store } = this.opts;
    const { actions, wakeAt } = planUpdates(
      { services: store.list('service'), nodes: store.list('node'), tasksOfService: (id) => store.tasksOfService(id) },
      { now: new Date().toISOString(), newId: newObjectId, nodeMatches: this.opts.nodeMatches },
    );
    if (wakeAt !== undefined) this.wakeUp(wakeAt);
    return actions;
  }

  /** `service update --rebalance`: the moves of every service whose request is pending (orchestrator/rebalance.ts). */
  requestedRebalances(): Action[] {
    const { store } = this.opts;
    return requestedRebalanceActions(store.list('service'), {
      nodes: store.list('node'), tasksOfNode: (id) => store.tasksOfNode(id), tasksOfService: (id) => store.tasksOfService(id),
    }, { now: new Date().toISOString(), newId: newObjectId });
  }

  /**
   * `swarm update --auto-rebalance true`: once a node has joined or come back (ready and active), the
   * services spread onto it, one steady service at a time, start-first (orchestrator/rebalance.ts).
   */
  autoRebalance(): Action[] {
    const { store } = this.opts;
    if (!store.list('cluster')[0]?.spec.autoRebalance) {
      // Off (the default): nothing to track; once turned on, the nodes then active are the baseline.
      this.activeNodes = undefined;
      this.rebalance = undefined;
      return [];
    }
    const active = new Set(store.list('node').filter((n) => n.status.state === 'ready' && n.spec.availability === 'active').map((n) => n.id));
    const joined = this.activeNodes !== undefined && [...active].some((id) => !this.activeNodes!.has(id));
    this.activeNodes = active;
    const now = Date.now();
    if (joined) {
      // Nodes often come back together (a rack, a partition healing): wait a moment for the others.
      this.rebalance = { at: now + REBALANCE_SETTLE_MS, until: now + REBALANCE_SETTLE_MS + REBALANCE_GIVE_UP_MS };
      this.wakeUp(this.rebalance.at);
    }
    if (!this.rebalance || now < this.rebalance.at) return [];
    if (now > this.rebalance.until) {
      this.opts.logger.warn('automatic rebalance given up: services did not settle');
      this.rebalance = undefined;
      return [];
    }
    const { actions, settled } = autoRebalanceActions(store.list('service'), {
      nodes: store.list('node'), tasksOfNode: (id) => store.tasksOfNode(id), tasksOfService: (id) => store.tasksOfService(id),
    }, { now: new Date(now).toISOString(), newId: newObjectId });
    if (settled) this.rebalance = undefined;
    if (actions.length > 0) this.opts.logger.info({ moves: actions.length }, 'automatic rebalance: moving tasks');
    return actions;
  }

  /** Service VIPs, published ports and nodes' ingress addresses. */
  allocate(): Action[] {
    const { store } = this.opts;
    return this.allocator.pass({ networks: store.list('network'), services: store.list('service'), tasks: store.list('task'), nodes: store.list('node') });
  }

  /** NEW tasks get their network addresses, then they and PENDING ones are placed. */
  schedule(): Action[] {
    const { store } = this.opts;
    const now = new Date().toISOString();
    const actions: Action[] = [];
    const toPlace: TaskObject[] = [];
    const running: TaskObject[] = [];
    const nodes = store.list('node');
    for (const t of store.list('task')) {
      if (t.desiredState !== 'running') {
        // Never started: nothing to stop on a worker.
        if ((t.status.state === 'new' || t.status.state === 'pending') && !t.nodeId) {
          actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'shutdown', timestamp: now, message: 'shut down before it was scheduled' } }, expectVersion: t.meta.version });
        }
        continue;
      }
      if (t.status.state === 'new' || t.status.state === 'pending') toPlace.push(t);
      else if (t.nodeId && !isAttachment(t)) running.push(t);
    }
    if (toPlace.length === 0) return actions;
    const allocated = this.allocateTasks(toPlace, now, actions);
    toPlace.length = 0;
    for (const t of allocated) {
      // A container's network attachment is on its container's node already: addressed is placed.
      if (isAttachment(t)) actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'assigned', timestamp: now, message: 'network attachment allocated' } }, expectVersion: t.meta.version });
      else toPlace.push(t);
    }
    const { assignments, unplaced } = this.opts.placer.place(nodes, running, toPlace);
    for (const t of toPlace) {
      const nodeId = assignments.get(t.id);
      if (nodeId) {
        actions.push({ op: 'update', kind: 'task', object: { ...t, nodeId, status: { ...t.status, state: 'assigned', timestamp: now, message: 'scheduler assigned task to node' } }, expectVersion: t.meta.version });
        continue;
      }
      const why = unplaced.get(t.id) ?? 'no suitable node';
      if (t.status.state !== 'pending' || t.status.error !== why) {
        actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'pending', timestamp: now, message: 'pending task scheduling', error: why } }, expectVersion: t.meta.version });
      }
    }
    return actions;
  }

  /**
   * Gives tasks that join networks their addresses. A task that cannot get one stays PENDING with
   * the reason and is not placed; the others come back with their attachments, ready to place.
   */
  private allocateTasks(tasks: TaskObject[], now: string, actions: Action[]): TaskObject[] {
    const { store } = this.opts;
    const networks = store.list('network');
    const ingress = ingressNetwork(networks);
    let used: ReturnType<typeof addressesInUse> | undefined;
    const ready: TaskObject[] = [];
    for (const t of tasks) {
      const service = store.get('service', t.serviceId);
      const wanted = service ? attachedNetworkIds(service.spec, ingress) : isAttachment(t) ? t.spec.networks : [];
      if (t.networks.length > 0 || wanted.length === 0) {
        ready.push(t);
        continue;
      }
      used ??= addressesInUse({ networks, services: store.list('service'), tasks: store.list('task'), nodes: store.list('node') });
      try {
        ready.push({ ...t, networks: this.allocator.allocateTask(service, t.spec, networks, used) });
      } catch (err) {
        if (!(err instanceof AllocationError)) throw err;
        if (t.status.error !== err.message) {
          actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'pending', timestamp: now, message: 'pending network allocation', error: err.message } }, expectVersion: t.meta.version });
        }
      }
    }
    return ready;
  }
}
