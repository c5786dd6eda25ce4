/**
 * The dispatcher, on the leader: one session per worker. It registers the node, streams the tasks
 * assigned to it (the whole set first, then every change), tracks heartbeats (a node that misses
 * a few is marked down, and the orchestrator orphans its tasks), and batches the workers' task
 * status updates into few raft proposals.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ClusterLog } from '../state/cluster-log.js';
import {
  isTerminal, taskStateRank, type NodeObject, type NodeRole, type TaskObject, type TaskState,
} from '../../api/objects.js';
import { newObjectId } from '../../api/ids.js';
import {
  attachableNetwork, AttachmentError, attachmentTask, existingAttachment, isAttachment, type AttachmentRequest,
} from '../allocator/attachment.js';
import type { NodeNetworkView } from './network-view.js';
import { isRemovedNode } from '../state/removed-nodes.js';
import type { Action, ClusterStore, StoreEvent } from '../state/store.js';

export interface Assignment {
  task: TaskObject;
  action: 'update' | 'remove';
}

export interface SessionMessage {
  sessionId: string;
  assignments: Assignment[];
  full: boolean;
  managers: string[];
  heartbeatPeriodMs: number;
  /** The role the swarm wants the node in, and its raft id once it is to be a manager. */
  nodeRole: NodeRole;
  raftId: number;
  /** Sent when the node's view of the networks changed (and with the first message). */
  networkState?: NodeNetworkView;
}

export interface TaskStatusUpdate {
  taskId: string;
  status: TaskObject['status'];
}

export interface DispatcherOptions {
  store: ClusterStore;
  log: ClusterLog;
  logger: Logger;
  heartbeatPeriodMs: number;
  /** A node is down after this many periods without a heartbeat. */
  missedHeartbeats: number;
  managers: () => string[];
  now?: () => number;
  /** How long status updates wait to share one proposal. */
  batchMs?: number;
  /** The node's view of the networks; without it, sessions carry no network state. */
  networkStateOf?: (nodeId: string) => NodeNetworkView | undefined;
}

export class DispatcherError extends Error {
  constructor(message: string, readonly code: 'unknown-session' | 'not-leader' | 'invalid') {
    super(message);
    this.name = 'DispatcherError';
  }
}

interface Session {
  id: string;
  nodeId: string;
  lastHeartbeat: number;
  send: (msg: SessionMessage) => void;
  /** Ends the worker's stream, so that it goes looking for the (new) leader. */
  close?: () => void;
  /** Versions already sent, so that unchanged tasks are not sent again. */
  sent: Map<string, number>;
  /** The network state last sent (serialised), so that only changes are sent. */
  networkSent: string;
}

/** A task the worker should know about: assigned to it, and not yet gone. */
function isAssignable(t: TaskObject): boolean {
  return t.nodeId !== '' && taskStateRank(t.status.state) >= taskStateRank('assigned');
}

export class Dispatcher {
  private readonly sessions = new Map<string, Session>(); // by node id
  private readonly pending = new Map<string, { nodeId: string; status: TaskObject['status'] }>();
  private flushTimer?: NodeJS.Timeout;
  private flushing = Promise.resolve();
  private readonly unwatch: () => void;
  private readonly now: () => number;
  /** When this dispatcher started: nodes get a full heartbeat timeout from then to open a session. */
  private readonly startedAt: number;
  private networkRefresh?: NodeJS.Timeout;

  constructor(private readonly opts: DispatcherOptions) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.unwatch = opts.store.watch((events) => this.onStoreEvents(events));
  }

  /** On losing leadership: every session ends, and its worker reconnects to the new leader. */
  stop(): void {
    this.unwatch();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    clearTimeout(this.networkRefresh);
    for (const s of this.sessions.values()) s.close?.();
    this.sessions.clear();
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Opens (or replaces) the session of `nodeId`: registers or refreshes the node as ready, then
   * sends every task assigned to it.
   */
  async openSession(
    nodeId: string, role: NodeRole, description: NodeObject['description'], addr: string,
    send: (msg: SessionMessage) => void, advertiseAddr = '', close?: () => void,
  ): Promise<Session> {
    const { store, log } = this.opts;
    if (isRemovedNode(store.list('cluster')[0], nodeId)) {
      throw new DispatcherError(`node ${nodeId} was removed from the swarm: run "swarm leave --force" on it, then join again`, 'invalid');
    }
    for (let attempt = 0; ; attempt++) {
      const existing = store.get('node', nodeId);
      const node: NodeObject = existing
        ? { ...existing, description, status: { state: 'ready', message: '', addr }, advertiseAddr }
        : {
          id: nodeId, meta: { version: 0, createdAt: '', updatedAt: '' },
          spec: { role, availability: 'active', labels: {} }, description, status: { state: 'ready', message: '', addr }, advertiseAddr,
        };
      const action: Action = existing
        ? { op: 'update', kind: 'node', object: node, expectVersion: existing.meta.version }
        : { op: 'create', kind: 'node', object: node };
      const r = await log.propose({ actions: [action], time: new Date(this.now()).toISOString() });
      if (r.ok) break;
      if (attempt >= 3) throw new DispatcherError(`cannot register node ${nodeId}: ${r.error.message}`, 'invalid');
    }
    const session: Session = { id: randomBytes(12).toString('hex'), nodeId, lastHeartbeat: this.now(), send, close, sent: new Map(), networkSent: '' };
    this.sessions.set(nodeId, session);
    const assignments = store.tasksOfNode(nodeId).filter(isAssignable).map((task) => {
      session.sent.set(task.id, task.meta.version);
      return { task, action: 'update' as const };
    });
    send({ ...this.header(session), assignments, full: true, ...this.networkChange(session) });
    this.opts.logger.info({ nodeId, addr, tasks: assignments.length }, 'worker session opened');
    return session;
  }

  closeSession(nodeId: string, sessionId: string): void {
    const s = this.sessions.get(nodeId);
    if (s && s.id === sessionId) this.sessions.delete(nodeId);
  }

  heartbeat(nodeId: string, sessionId: string): number {
    const s = this.session(nodeId, sessionId);
    s.lastHeartbeat = this.now();
    return this.opts.heartbeatPeriodMs;
  }

  /** Queues status updates; they reach the store in one proposal per batch. */
  updateTaskStatus(nodeId: string, sessionId: string, updates: TaskStatusUpdate[]): void {
    this.session(nodeId, sessionId).lastHeartbeat = this.now();
    for (const u of updates) this.pending.set(u.taskId, { nodeId, status: u.status });
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.flushing = this.flushing.then(() => this.flush());
      }, this.opts.batchMs ?? 20);
    }
  }

  /**
   * A standalone container on `nodeId` joins an attachable network: its attachment task, once the
   * leader has given it an address. A retried request gets the attachment made the first time.
   */
  async attachNetwork(nodeId: string, sessionId: string, req: AttachmentRequest, timeoutMs = 10_000): Promise<TaskObject> {
    this.session(nodeId, sessionId);
    const { store, log } = this.opts;
    let network;
    try {
      network = attachableNetwork(store.list('network'), req);
    } catch (err) {
      throw err instanceof AttachmentError ? new DispatcherError(err.message, 'invalid') : err;
    }
    const fail = (why: string) => new DispatcherError(`cannot attach container ${req.containerName} to network ${network.spec.name}: ${why}`, 'invalid');
    let task = existingAttachment(store.tasksOfNode(nodeId), network.id, req.containerId);
    if (!task) {
      task = attachmentTask(newObjectId(), nodeId, network, req, new Date(this.now()).toISOString());
      const r = await log.propose({ actions: [{ op: 'create', kind: 'task', object: task }], time: new Date(this.now()).toISOString() });
      if (!r.ok) throw fail(r.error.message);
    }
    const id = task.id;
    const done = await this.waitForTask(id, (t) => !t || isTerminal(t.status.state) || !!t.status.error
      || (t.status.state === 'assigned' && (t.networks[0]?.addresses.length ?? 0) > 0), timeoutMs);
    if (done && done.status.state === 'assigned' && done.networks[0]?.addresses.length) return done;
    // Nothing half-made: an attachment that got no address goes away again.
    await this.removeAttachment(nodeId, id);
    throw fail(done?.status.error || (done ? `no address within ${timeoutMs} ms` : 'the attachment was removed'));
  }

  /** The container left the network (or is gone): its attachment and address are released. */
  async detachNetwork(nodeId: string, sessionId: string, taskId: string): Promise<void> {
    this.session(nodeId, sessionId);
    const t = this.opts.store.get('task', taskId);
    if (t && (t.nodeId !== nodeId || !isAttachment(t))) throw new DispatcherError(`task ${taskId} is not a network attachment of node ${nodeId}`, 'invalid');
    await this.removeAttachment(nodeId, taskId);
  }

  private async removeAttachment(nodeId: string, taskId: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const t = this.opts.store.get('task', taskId);
      if (!t || t.nodeId !== nodeId || !isAttachment(t)) return;
      const r = await this.opts.log.propose({ actions: [{ op: 'delete', kind: 'task', id: t.id, expectVersion: t.meta.version }], time: new Date(this.now()).toISOString() });
      if (r.ok) return;
    }
    throw new DispatcherError(`cannot remove network attachment ${taskId}: it kept changing`, 'invalid');
  }

  /** The task once `done` holds for it (undefined: deleted), or as it is when the time is up. */
  private waitForTask(id: string, done: (t: TaskObject | undefined) => boolean, timeoutMs: number): Promise<TaskObject | undefined> {
    const { store } = this.opts;
    return new Promise((resolve) => {
      let unwatch: (() => void) | undefined;
      let settled = false;
      const finish = (t: TaskObject | undefined) => {
        if (settled) return;
        settled = true;
        unwatch?.();
        clearTimeout(timer);
        resolve(t);
      };
      const timer = setTimeout(() => finish(store.get('task', id)), timeoutMs);
      const check = () => {
        const t = store.get('task', id);
        if (done(t)) finish(t);
      };
      unwatch = store.watch((events) => { if (events.some((e) => e.kind === 'task' && e.object.id === id)) check(); });
      check();
    });
  }

  /** Marks down every node whose session missed its heartbeats; called on a timer by the leader. */
  async checkHeartbeats(): Promise<string[]> {
    const deadline = this.now() - this.opts.heartbeatPeriodMs * this.opts.missedHeartbeats;
    const expired = [...this.sessions.values()].filter((s) => s.lastHeartbeat < deadline);
    const actions: Action[] = [];
    for (const s of expired) {
      this.sessions.delete(s.nodeId);
      const node = this.opts.store.get('node', s.nodeId);
      if (node && node.status.state !== 'down') {
        actions.push({ op: 'update', kind: 'node', object: { ...node, status: { ...node.status, state: 'down', message: 'heartbeat failure' } }, expectVersion: node.meta.version });
      }
    }
    // A node marked ready by an earlier leader (or before a restart) that has not opened a session
    // with this dispatcher within a heartbeat timeout of its start.
    for (const node of this.opts.store.list('node')) {
      if (node.status.state === 'ready' && !this.sessions.has(node.id) && !expired.some((s) => s.nodeId === node.id)
        && Math.max(this.startedAt, Date.parse(node.meta.updatedAt)) < deadline) {
        actions.push({ op: 'update', kind: 'node', object: { ...node, status: { ...node.status, state: 'down', message: 'no session with the leader' } }, expectVersion: node.meta.version });
      }
    }
    if (actions.length) {
      const r = await this.opts.log.propose({ actions, time: new Date(this.now()).toISOString() });
      if (!r.ok) this.opts.logger.warn({ err: r.error.message }, 'marking nodes down failed; will retry');
      else this.opts.logger.warn({ nodes: actions.map((a) => (a.op === 'update' ? a.object.id : '')) }, 'nodes marked down after missed heartbeats');
    }
    return expired.map((s) => s.nodeId);
  }

  /** The node's network state if it differs from what the session was last sent. */
  private networkChange(s: Session): { networkState?: NodeNetworkView } {
    const state = this.opts.networkStateOf?.(s.nodeId);
    if (!state) return {};
    const serialised = JSON.stringify(state);
    if (serialised === s.networkSent) return {};
    s.networkSent = serialised;
    return { networkState: state };
  }

  /** Tasks moved, started or stopped somewhere: every node's view of the networks may have changed. */
  private refreshNetworksSoon(): void {
    if (this.networkRefresh || !this.opts.networkStateOf) return;
    this.networkRefresh = setTimeout(() => {
      this.networkRefresh = undefined;
      for (const s of [...this.sessions.values()]) {
        const change = this.networkChange(s);
        if (!change.networkState) continue;
        try {
          s.send({ ...this.header(s), assignments: [], full: false, ...change });
        } catch (err) {
          this.opts.logger.warn({ nodeId: s.nodeId, err }, 'sending network state failed; closing the session');
          this.sessions.delete(s.nodeId);
        }
      }
    }, 30);
  }

  /** What every message of a session carries besides assignments. */
  private header(s: Session): Omit<SessionMessage, 'assignments' | 'full'> {
    const node = this.opts.store.get('node', s.nodeId);
    return {
      sessionId: s.id, managers: this.opts.managers(), heartbeatPeriodMs: this.opts.heartbeatPeriodMs,
      // A demoted manager stays one until the leader has removed it from raft: leaving earlier could
      // take away the quorum that the removal itself needs (two managers going to one).
      nodeRole: node?.managerStatus ? 'manager' : (node?.spec.role ?? 'worker'), raftId: node?.managerStatus?.raftId ?? 0,
    };
  }

  private session(nodeId: string, sessionId: string): Session {
    const s = this.sessions.get(nodeId);
    if (!s || s.id !== sessionId) throw new DispatcherError(`session ${sessionId} of node ${nodeId} is unknown: open a new session`, 'unknown-session');
    return s;
  }

  /** Applies queued status updates, building them against the store as it is now. */
  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = new Map(this.pending);
    this.pending.clear();
    for (let attempt = 0; attempt < 3 && batch.size > 0; attempt++) {
      const actions: Action[] = [];
      for (const [taskId, { nodeId, status }] of batch) {
        const t = this.opts.store.get('task', taskId);
        // Ignore updates for tasks gone, moved to another node, or that would go backwards.
        if (!t || t.nodeId !== nodeId || taskStateRank(status.state as TaskState) < taskStateRank(t.status.state)
          || (isTerminal(t.status.state) && t.status.state !== status.state)) {
          batch.delete(taskId);
          continue;
        }
        if (t.desiredState === 'remove' && isTerminal(status.state as TaskState)) {
          actions.push({ op: 'delete', kind: 'task', id: t.id, expectVersion: t.meta.version });
        } else {
          actions.push({ op: 'update', kind: 'task', object: { ...t, status }, expectVersion: t.meta.version });
        }
      }
      if (actions.length === 0) return;
      const r = await this.opts.log.propose({ actions, time: new Date(this.now()).toISOString() });
      if (r.ok) return;
      this.opts.logger.debug({ err: r.error.message, attempt }, 'status batch conflicted; rebuilding');
    }
  }

  private onStoreEvents(events: StoreEvent[]): void {
    const bySession = new Map<Session, Assignment[]>();
    const add = (s: Session, a: Assignment) => {
      const list = bySession.get(s);
      if (list) list.push(a);
      else bySession.set(s, [a]);
    };
    if (events.some((e) => e.kind !== 'cluster')) this.refreshNetworksSoon();
    for (const e of events) {
      if (e.kind === 'node' && e.op === 'update') {
        const n = e.object as NodeObject;
        const o = e.old as NodeObject | undefined;
        const s = this.sessions.get(n.id);
        // A promotion or demotion: the node learns it from its session and changes role itself.
        if (s && o && (o.spec.role !== n.spec.role || o.managerStatus?.raftId !== n.managerStatus?.raftId) && !bySession.has(s)) bySession.set(s, []);
        continue;
      }
      if (e.kind !== 'task') continue;
      const t = e.object as TaskObject;
      // A delete event carries the deleted task as its object.
      const old = (e.op === 'delete' ? e.object : e.old) as TaskObject | undefined;
      // A task moved away from a node (or deleted): tell that node to forget it.
      if (old && old.nodeId && (e.op === 'delete' || old.nodeId !== t.nodeId)) {
        const s = this.sessions.get(old.nodeId);
        if (s && s.sent.delete(old.id)) add(s, { task: old, action: 'remove' });
      }
      if (e.op === 'delete' || !isAssignable(t)) continue;
      const s = this.sessions.get(t.nodeId);
      if (!s) continue;
      // Status changes the worker itself reported need not go back to it; desired state and spec do.
      const prevSent = s.sent.get(t.id);
      if (prevSent !== undefined && old && old.desiredState === t.desiredState && old.specVersion === t.specVersion) {
        s.sent.set(t.id, t.meta.version);
        continue;
      }
      s.sent.set(t.id, t.meta.version);
      add(s, { task: t, action: 'update' });
    }
    for (const [s, assignments] of bySession) {
      try {
        // New assignments may name networks the node has not heard of yet: their state goes first.
        s.send({ ...this.header(s), assignments, full: false, ...this.networkChange(s) });
      } catch (err) {
        this.opts.logger.warn({ nodeId: s.nodeId, err }, 'sending assignments failed; closing the session');
        this.sessions.delete(s.nodeId);
      }
    }
  }
}
