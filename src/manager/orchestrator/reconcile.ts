/**
 * The leader's orchestrators as pure functions of the store: given services, tasks and nodes, the
 * actions that move the cluster toward the desired state. The leader proposes them through raft;
 * nothing here does I/O or reads a clock (time and ids are passed in), so every rule is testable.
 *
 * - replicated: one running task per slot 1..replicas; extra slots shut down, highest first.
 * - global: one running task per eligible node.
 * - replacement: a task that ended (failed, orphaned, rejected, or completed under condition any)
 *   gets a successor in the same slot/node; the old one is kept as history, trimmed to a limit.
 * - node loss and drain: tasks on a down node are orphaned; on a drained node, shut down and replaced.
 */
import {
  isTerminal, type NodeObject, type ServiceObject, type TaskObject,
} from '../../api/objects.js';
import type { Action } from '../state/store.js';
import { byRecency, isUp } from './updater.js';
import { restartDecision } from './restart.js';

export interface ClusterView {
  services: ServiceObject[];
  nodes: NodeObject[];
  tasksOfService(serviceId: string): TaskObject[];
}

export interface ReconcileContext {
  now: string;
  newId: () => string;
  taskHistoryLimit: number;
  /** Whether `node` satisfies the service's placement constraints (the scheduler's parser). */
  nodeMatches?: (service: ServiceObject, node: NodeObject) => boolean;
  /** Told when a pass should run again although nothing changes (a restart delay ends). */
  wake?: (atMs: number) => void;
}

const RUNNING_DESIRED = 'running';

function newTask(service: ServiceObject, slot: number, nodeId: string, ctx: ReconcileContext): TaskObject {
  return {
    id: ctx.newId(),
    meta: { version: 0, createdAt: '', updatedAt: '' },
    serviceId: service.id,
    serviceName: service.spec.name,
    slot,
    nodeId,
    spec: service.spec.task,
    specVersion: service.specVersion,
    desiredState: RUNNING_DESIRED,
    status: { state: 'new', timestamp: ctx.now, message: 'created', error: '', exitCode: 0, containerId: '' },
    networks: [],
  };
}

/**
 * The changes of one reconcile pass, one action per task at most: several rules may touch the same
 * task (a node goes down, then its slot is reconciled), and two updates of one object in a proposal
 * would fail its compare-and-set.
 */
class Plan {
  private readonly updates = new Map<string, { base: TaskObject; next: TaskObject }>();
  private readonly creates: TaskObject[] = [];
  private readonly deletes = new Map<string, TaskObject>();

  /** The task as this plan leaves it so far. */
  current(t: TaskObject): TaskObject {
    return this.updates.get(t.id)?.next ?? t;
  }

  change(t: TaskObject, change: Partial<TaskObject>): TaskObject {
    const prev = this.updates.get(t.id);
    const next = { ...(prev?.next ?? t), ...change };
    this.updates.set(t.id, { base: prev?.base ?? t, next });
    return next;
  }

  create(t: TaskObject): void {
    this.creates.push(t);
  }

  remove(t: TaskObject): void {
    this.updates.delete(t.id);
    this.deletes.set(t.id, t);
  }

  actions(): Action[] {
    const out: Action[] = [];
    for (const { base, next } of this.updates.values()) {
      out.push({ op: 'update', kind: 'task', object: next, expectVersion: base.meta.version });
    }
    for (const t of this.creates) out.push({ op: 'create', kind: 'task', object: t });
    for (const t of this.deletes.values()) out.push({ op: 'delete', kind: 'task', id: t.id, expectVersion: t.meta.version });
    return out;
  }
}

/** Should a finished task be replaced, under the service's restart condition? */
function wantsReplacement(service: ServiceObject, task: TaskObject): boolean {
  const cond = service.spec.task.restartPolicy.condition;
  if (task.status.state === 'orphaned' || task.status.state === 'rejected') return true;
  if (cond === 'none') return false;
  if (cond === 'on-failure') return task.status.state === 'failed';
  return true;
}

function isEligible(node: NodeObject): boolean {
  return node.status.state === 'ready' && node.spec.availability === 'active';
}

export function reconcile(view: ClusterView, ctx: ReconcileContext): Action[] {
  const plan = new Plan();
  const nodesById = new Map(view.nodes.map((n) => [n.id, n]));

  for (const service of view.services) {
    const tasks = view.tasksOfService(service.id);
    // Node loss and drain first: they turn live tasks into ones that need replacing.
    for (const t of tasks) {
      if (isTerminal(t.status.state) || !t.nodeId) continue;
      const node = nodesById.get(t.nodeId);
      if (t.desiredState !== RUNNING_DESIRED) {
        // Being stopped on a node that is gone: it never reports, and a stop-first update waits for it.
        if (!node || node.status.state === 'down') {
          plan.change(t, { status: { ...t.status, state: 'orphaned', timestamp: ctx.now, message: `node ${t.nodeId} is down`, error: 'task orphaned: its node is down' } });
        }
        continue;
      }
      if (!node || node.status.state === 'down') {
        plan.change(t, {
          status: { ...t.status, state: 'orphaned', timestamp: ctx.now, message: `node ${t.nodeId} is down`, error: 'task orphaned: its node is down' },
        });
      } else if (node.spec.availability === 'drain') {
        // Start-first services keep it until its successor is up (reconcileGroup); others stop it now.
        if (drainsStartFirst(service)) continue;
        // Stays live until the agent stops it; its slot gets a successor now.
        plan.change(t, { desiredState: 'shutdown', status: { ...t.status, message: `node ${node.description.hostname} is draining` } });
      }
    }
    const current = tasks.map((t) => plan.current(t));
    if ('replicated' in service.spec.mode) {
      const drained = (t: TaskObject) => nodesById.get(t.nodeId)?.spec.availability === 'drain';
      reconcileSlots(service, current, plan, ctx, service.spec.mode.replicated.replicas, drained);
    } else {
      reconcileGlobal(service, current, view.nodes, plan, ctx);
    }
    trimHistory(current.map((t) => plan.current(t)), plan, ctx.taskHistoryLimit);
  }
  return plan.actions();
}

/** Tasks still wanted, grouped by `key`. */
function groupWanted(tasks: TaskObject[], key: (t: TaskObject) => string): Map<string, TaskObject[]> {
  const groups = new Map<string, TaskObject[]>();
  for (const t of tasks) {
    if (t.desiredState !== RUNNING_DESIRED) continue;
    const k = key(t);
    const list = groups.get(k);
    if (list) list.push(t);
    else groups.set(k, [t]);
  }
  return groups;
}

/**
 * One group (a slot, or a node of a global service): finished tasks stop being wanted and get a
 * successor if the restart condition says so; with no task at all, one is created; with several
 * live ones (a leader change mid-replacement), the newest stays.
 */
function reconcileGroup(
  service: ServiceObject, group: TaskObject[], plan: Plan, spawn: (restarts?: string[]) => TaskObject, ctx: ReconcileContext,
  stopping: TaskObject[] = [], drained: (t: TaskObject) => boolean = () => false,
): void {
  const alive = group.filter((t) => !isTerminal(t.status.state));
  const dead = group.filter((t) => isTerminal(t.status.state));
  // Only tasks on a drained node serve this slot (a start-first service): a successor goes elsewhere,
  // and the drained one stops once it is up (below).
  if (alive.length > 0 && alive.every(drained)) plan.create(spawn());
  if (alive.length === 0 && (group.length === 0 || dead.some((t) => wantsReplacement(service, t)))) {
    // A stop-first update stopped this slot's old task: its successor starts once it has stopped.
    if (stopping.some((t) => t.specVersion !== service.specVersion)) return;
    // Restart policy: the delay, and the attempts within the window (see restart.ts).
    const last = [...dead].sort(byRecency)[0];
    const decision = last ? restartDecision(service, last, ctx.now) : { restart: true as const, restarts: undefined };
    if (!decision.restart) {
      if (decision.retryAt !== undefined) ctx.wake?.(decision.retryAt);
      return;
    }
    // The finished tasks become history; a task that is not replaced (restart condition none)
    // keeps desired state running, so that its slot counts as filled.
    for (const t of dead) plan.change(t, { desiredState: 'shutdown' });
    plan.create(spawn(decision.restarts));
  } else if (alive.length > 0) {
    for (const t of dead) plan.change(t, { desiredState: 'shutdown' });
  }
  alive.sort(byRecency);
  // A start-first update added a new task beside the old one: the old one (the newest of them that
  // is up) keeps serving until the new one is up.
  const keep = alive[0] && !isUp(alive[0]) ? alive.slice(1).find(isUp) : undefined;
  for (const extra of alive.slice(1)) if (extra !== keep) plan.change(extra, { desiredState: 'shutdown' });
}

/** Tasks being stopped (desired state no longer running, not finished), grouped by `key`. */
function groupStopping(tasks: TaskObject[], key: (t: TaskObject) => string): Map<string, TaskObject[]> {
  const groups = new Map<string, TaskObject[]>();
  for (const t of tasks) {
    if (t.desiredState === RUNNING_DESIRED || isTerminal(t.status.state)) continue;
    const k = key(t);
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  return groups;
}

function drainsStartFirst(service: ServiceObject): boolean {
  return 'replicated' in service.spec.mode && service.spec.update?.order === 'start-first';
}

function reconcileSlots(service: ServiceObject, tasks: TaskObject[], plan: Plan, ctx: ReconcileContext, replicas: number, drained: (t: TaskObject) => boolean): void {
  const bySlot = groupWanted(tasks, (t) => String(t.slot));
  const stopping = groupStopping(tasks, (t) => String(t.slot));
  for (let slot = 1; slot <= replicas; slot++) {
    reconcileGroup(service, bySlot.get(String(slot)) ?? [], plan, (restarts) => withRestarts(newTask(service, slot, '', ctx), restarts), ctx, stopping.get(String(slot)),
      drainsStartFirst(service) ? drained : undefined);
  }
  // Scale down: every task in a slot above the replica count stops.
  for (const [slot, group] of bySlot) {
    if (Number(slot) > replicas) for (const t of group) plan.change(t, { desiredState: 'shutdown' });
  }
}

function reconcileGlobal(service: ServiceObject, tasks: TaskObject[], nodes: NodeObject[], plan: Plan, ctx: ReconcileContext): void {
  const byNode = groupWanted(tasks, (t) => t.nodeId);
  const stopping = groupStopping(tasks, (t) => t.nodeId);
  const wanted = new Set<string>();
  for (const node of nodes) {
    if (!isEligible(node) || (ctx.nodeMatches && !ctx.nodeMatches(service, node))) continue;
    wanted.add(node.id);
    reconcileGroup(service, byNode.get(node.id) ?? [], plan, (restarts) => withRestarts(newTask(service, 0, node.id, ctx), restarts), ctx, stopping.get(node.id));
  }
  for (const [nodeId, group] of byNode) {
    if (!wanted.has(nodeId)) for (const t of group) plan.change(t, { desiredState: 'shutdown' });
  }
}

function withRestarts(t: TaskObject, restarts: string[] | undefined): TaskObject {
  return restarts && restarts.length ? { ...t, restarts } : t;
}

/** Keep at most `limit` finished, unwanted tasks per slot (or node), deleting the oldest. */
function trimHistory(tasks: TaskObject[], plan: Plan, limit: number): void {
  const groups = new Map<string, TaskObject[]>();
  for (const t of tasks) {
    if (!isTerminal(t.status.state) || t.desiredState === RUNNING_DESIRED) continue;
    const key = t.slot > 0 ? `s${t.slot}` : `n${t.nodeId}`;
    const list = groups.get(key) ?? [];
    list.push(t);
    groups.set(key, list);
  }
  for (const list of groups.values()) {
    if (list.length <= limit) continue;
    list.sort((a, b) => a.meta.version - b.meta.version);
    for (const t of list.slice(0, list.length - limit)) plan.remove(t);
  }
}
