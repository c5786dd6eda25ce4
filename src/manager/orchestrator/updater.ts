/**
 * The rolling updater, as a pure function of the store: given a service whose update is in
 * progress (updateStatus updating or rollback_started) and its tasks, the actions of this pass.
 * It keeps nothing in memory: the batch, the failures and the delay are read back from the tasks
 * and the service's updateStatus, so a new leader resumes an update where the old one left it.
 *
 * A slot (replicated) or node (global) is
 * - dirty: its live task was made from an older spec version;
 * - starting: its new task is not up yet (running, and healthy when checked), or its old task is
 *   still stopping (stop-first), or it waits for the orchestrator to fill it;
 * - monitoring: its new task is up but has not been up for `monitor` yet;
 * - done: its task is of the current version and has been up for `monitor`.
 * As in SwarmKit, at most `parallelism` slots are starting at once, and the monitor period overlaps
 * the next slots: without a delay a slot is taken up as soon as one finishes starting; with a delay,
 * slots go in batches, the next one `delay` after the last has come up. A new task that fails
 * within its monitor period counts as a failure whenever that happens; above `maxFailureRatio` of
 * the slots the failure action applies. The update completes once the last new task has been up
 * for `monitor`. (Holding every batch for the whole monitor period would make an update of N slots
 * cost N / parallelism monitor periods; Docker pays it once, at the end.)
 * Start-first adds the new task beside the old one (the orchestrator stops the old one once the
 * new is up); stop-first stops the old one (the orchestrator starts the new one once the old has
 * stopped).
 */
import { isTerminal, type NodeObject, type ServiceObject, type TaskObject, type UpdateConfig } from '../../api/objects.js';
import type { Action } from '../state/store.js';

export interface UpdateContext {
  now: string;
  newId: () => string;
  /** Whether `node` satisfies the service's placement constraints (global services). */
  nodeMatches?: (service: ServiceObject, node: NodeObject) => boolean;
}

export interface UpdatePass {
  actions: Action[];
  /** When a pass should run again although nothing changed (a monitor period or a delay ends). */
  wakeAt?: number;
}

type UpdateStatus = NonNullable<ServiceObject['updateStatus']>;
export type SlotPhase = 'dirty' | 'starting' | 'monitoring' | 'done';

/** A task counts as up once running and, when a health check applies, healthy. */
export function isUp(t: TaskObject): boolean {
  return t.status.state === 'running' && (!t.status.health || t.status.health === 'healthy');
}

export function isUpdating(service: ServiceObject): boolean {
  const s = service.updateStatus?.state;
  return s === 'updating' || s === 'rollback_started';
}

/** The update config that drives the current update: the rollback config while rolling back. */
export function activeConfig(service: ServiceObject): UpdateConfig {
  return service.updateStatus?.state.startsWith('rollback') ? service.spec.rollback : service.spec.update;
}

/** Newest first: by spec version, then creation (a slot may hold an old and a new task). */
export function byRecency(a: TaskObject, b: TaskObject): number {
  return b.specVersion - a.specVersion || b.meta.createdAt.localeCompare(a.meta.createdAt) || b.meta.version - a.meta.version;
}

function startedMs(t: TaskObject): number {
  return Date.parse(t.status.startedAt || t.status.timestamp);
}

/** Where each slot stands, and when an in-flight one may be done. */
export function slotPhase(service: ServiceObject, group: TaskObject[], monitorMs: number, now: number): { phase: SlotPhase; doneAt?: number } {
  const version = service.specVersion;
  const wanted = group.filter((t) => t.desiredState === 'running');
  const live = wanted.filter((t) => !isTerminal(t.status.state));
  const fresh = live.filter((t) => t.specVersion === version).sort(byRecency)[0];
  const stale = live.filter((t) => t.specVersion !== version);
  if (fresh) {
    if (!isUp(fresh) || stale.length > 0) return { phase: 'starting' };
    const doneAt = startedMs(fresh) + monitorMs;
    return doneAt <= now ? { phase: 'done' } : { phase: 'monitoring', doneAt };
  }
  if (stale.length > 0) return { phase: 'dirty' };
  // A finished task still holding its slot (its restart policy does not replace it).
  const held = wanted.filter((t) => isTerminal(t.status.state)).sort(byRecency)[0];
  if (held) return { phase: held.specVersion === version ? 'done' : 'dirty' };
  // Empty: an old task stopping (stop-first), or the orchestrator is about to fill the slot.
  return { phase: 'starting' };
}

/** New tasks that ended within their monitor period: what the failure ratio counts. */
export function failedTasks(service: ServiceObject, tasks: TaskObject[], monitorMs: number): TaskObject[] {
  return tasks.filter((t) => {
    if (t.specVersion !== service.specVersion) return false;
    const st = t.status.state;
    if (st !== 'failed' && st !== 'rejected' && st !== 'complete') return false;
    if (!t.status.startedAt) return true; // never started
    return Date.parse(t.status.timestamp) - Date.parse(t.status.startedAt) < monitorMs;
  });
}

/** The slots of the service: replicated 1..replicas by slot, global by eligible node. */
export function slotsOf(service: ServiceObject, tasks: TaskObject[], nodes: NodeObject[], ctx: Pick<UpdateContext, 'nodeMatches'>): Map<string, TaskObject[]> {
  const slots = new Map<string, TaskObject[]>();
  if ('replicated' in service.spec.mode) {
    for (let s = 1; s <= service.spec.mode.replicated.replicas; s++) slots.set(String(s), []);
    for (const t of tasks) slots.get(String(t.slot))?.push(t);
  } else {
    for (const n of nodes) {
      if (n.status.state !== 'ready' || n.spec.availability !== 'active') continue;
      if (ctx.nodeMatches && !ctx.nodeMatches(service, n)) continue;
      slots.set(n.id, []);
    }
    for (const t of tasks) slots.get(t.nodeId)?.push(t);
  }
  return slots;
}

function newTask(service: ServiceObject, key: string, ctx: UpdateContext): TaskObject {
  const replicated = 'replicated' in service.spec.mode;
  return {
    id: ctx.newId(),
    meta: { version: 0, createdAt: '', updatedAt: '' },
    serviceId: service.id,
    serviceName: service.spec.name,
    slot: replicated ? Number(key) : 0,
    nodeId: replicated ? '' : key,
    spec: service.spec.task,
    specVersion: service.specVersion,
    desiredState: 'running',
    status: { state: 'new', timestamp: ctx.now, message: 'created by the rolling update', error: '', exitCode: 0, containerId: '' },
    networks: [],
  };
}

function serviceUpdate(service: ServiceObject, next: ServiceObject): Action {
  return { op: 'update', kind: 'service', object: next, expectVersion: service.meta.version };
}

function taskLabel(t: TaskObject): string {
  return `${t.serviceName}.${t.slot > 0 ? t.slot : t.nodeId}`;
}

function failureReason(t: TaskObject): string {
  return `failure or early termination of task ${t.id}${t.status.error ? `: ${t.status.error}` : ` (${t.status.state})`}`;
}

/** One pass of the rolling update of `service`. */
export function planUpdate(service: ServiceObject, tasks: TaskObject[], nodes: NodeObject[], ctx: UpdateContext): UpdatePass {
  if (!isUpdating(service)) return { actions: [] };
  // Live tasks already made from the same template (a rollback to the spec they run) are adopted
  // by the new version rather than replaced.
  const template = JSON.stringify(service.spec.task);
  const adopt = tasks.filter((t) => t.desiredState === 'running' && !isTerminal(t.status.state) && t.specVersion !== service.specVersion && JSON.stringify(t.spec) === template);
  if (adopt.length === 0) return planSlots(service, tasks, nodes, ctx);
  const adopted = new Map(adopt.map((t) => [t.id, { ...t, specVersion: service.specVersion }]));
  const pass = planSlots(service, tasks.map((t) => adopted.get(t.id) ?? t), nodes, ctx);
  const actions: Action[] = adopt.map((t) => ({ op: 'update', kind: 'task', object: adopted.get(t.id)!, expectVersion: t.meta.version }));
  return { ...pass, actions: [...actions, ...pass.actions] };
}

function planSlots(service: ServiceObject, tasks: TaskObject[], nodes: NodeObject[], ctx: UpdateContext): UpdatePass {
  const status = service.updateStatus!;
  const rollingBack = status.state === 'rollback_started';
  const cfg = activeConfig(service);
  const now = Date.parse(ctx.now);
  const slots = slotsOf(service, tasks, nodes, ctx);
  const phases = [...slots].map(([key, group]) => ({ key, group, ...slotPhase(service, group, cfg.monitorMs, now) }));

  // Failures first: they may pause, roll back, or be tolerated.
  const failed = failedTasks(service, tasks, cfg.monitorMs);
  const total = Math.max(1, slots.size);
  if (failed.length !== (status.failures ?? 0)) {
    const tolerated = failed.length <= cfg.maxFailureRatio * total;
    const action = tolerated ? 'continue' : cfg.failureAction;
    const newest = [...failed].sort((a, b) => b.status.timestamp.localeCompare(a.status.timestamp))[0]!;
    if (action === 'rollback' && !rollingBack && service.previousSpec) {
      const next: ServiceObject = {
        ...service,
        spec: service.previousSpec,
        previousSpec: service.spec,
        specVersion: service.specVersion + 1,
        endpoint: { ...service.endpoint, ports: service.previousSpec.endpoint.ports },
        updateStatus: {
          state: 'rollback_started', message: `update rolled back due to ${failureReason(newest)}`,
          startedAt: ctx.now, completedAt: '', failures: 0, nextBatchAt: '',
        },
      };
      return { actions: [serviceUpdate(service, next)] };
    }
    if (action === 'pause' || action === 'rollback') {
      const next: ServiceObject = {
        ...service,
        updateStatus: {
          ...status, state: rollingBack ? 'rollback_paused' : 'paused', failures: failed.length,
          message: `${rollingBack ? 'rollback' : 'update'} paused due to ${failureReason(newest)}`,
        },
      };
      return { actions: [serviceUpdate(service, next)] };
    }
    // Tolerated (or failure action continue): remember the count, and go on in the same pass.
    service = { ...service, updateStatus: { ...status, failures: failed.length } };
  }
  const st = service.updateStatus!;
  const changedStatus = st !== status;

  const dirty = phases.filter((p) => p.phase === 'dirty');
  const starting = phases.filter((p) => p.phase === 'starting');
  const monitoring = phases.filter((p) => p.phase === 'monitoring');
  const wakeAt = Math.min(...monitoring.map((p) => p.doneAt ?? Infinity));
  const wake = Number.isFinite(wakeAt) ? { wakeAt } : {};

  if (dirty.length === 0 && starting.length === 0 && monitoring.length === 0) {
    const next: ServiceObject = {
      ...service,
      updateStatus: {
        ...st, state: rollingBack ? 'rollback_completed' : 'completed', completedAt: ctx.now, nextBatchAt: '',
        message: rollingBack ? (st.message.startsWith('update rolled back') ? `${st.message}; rollback completed` : 'rollback completed') : 'update completed',
      },
    };
    return { actions: [serviceUpdate(service, next)] };
  }
  const limit = cfg.parallelism > 0 ? cfg.parallelism : slots.size;
  // With a delay, slots go in batches: the next one only once the last batch is all up.
  const room = dirty.length === 0 ? 0 : cfg.delayMs > 0 ? (starting.length === 0 ? limit : 0) : limit - starting.length;
  if (room <= 0) {
    // An update never hangs without a reason: a new task the scheduler cannot place is named.
    const stuck = starting.flatMap((p) => p.group).find((t) => t.specVersion === service.specVersion && t.desiredState === 'running' && t.status.state === 'pending' && t.status.error);
    const base = rollingBack ? 'rollback in progress' : 'update in progress';
    const message = stuck ? `${base}: waiting for task ${taskLabel(stuck)}: ${stuck.status.error}` : st.message.startsWith(`${base}: waiting`) ? base : st.message;
    if (message !== st.message) return { actions: [serviceUpdate(service, { ...service, updateStatus: { ...st, message } })], ...wake };
    return { actions: changedStatus ? [serviceUpdate(service, service)] : [], ...wake };
  }

  // The delay follows a batch (not before the first).
  const anyUpdated = phases.some((p) => p.phase === 'done' || p.phase === 'monitoring');
  if (cfg.delayMs > 0 && anyUpdated) {
    if (!st.nextBatchAt) {
      const at = new Date(now + cfg.delayMs).toISOString();
      return { actions: [serviceUpdate(service, { ...service, updateStatus: { ...st, nextBatchAt: at } })], wakeAt: Math.min(now + cfg.delayMs, wakeAt) };
    }
    const at = Date.parse(st.nextBatchAt);
    if (at > now) return { actions: changedStatus ? [serviceUpdate(service, service)] : [], wakeAt: Math.min(at, wakeAt) };
  }
  const batch = dirty.sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true })).slice(0, room);
  const actions: Action[] = st.nextBatchAt || changedStatus ? [serviceUpdate(service, { ...service, updateStatus: { ...st, nextBatchAt: '' } })] : [];
  for (const p of batch) {
    const old = p.group.filter((t) => t.desiredState === 'running' && t.specVersion !== service.specVersion);
    if (cfg.order === 'start-first' && old.some((t) => !isTerminal(t.status.state))) {
      // The old task stays until the new one is up: the orchestrator stops it then.
      actions.push({ op: 'create', kind: 'task', object: newTask(service, p.key, ctx) });
    } else {
      // Stop-first: the orchestrator starts the new task once the old one has stopped.
      for (const t of old) actions.push({ op: 'update', kind: 'task', object: { ...t, desiredState: 'shutdown', status: { ...t.status, message: 'shut down by the rolling update' } }, expectVersion: t.meta.version });
    }
  }
  return { actions, ...wake };
}

/** The rolling-update pass over every service whose update is in progress. */
export function planUpdates(
  view: { services: ServiceObject[]; nodes: NodeObject[]; tasksOfService(id: string): TaskObject[] }, ctx: UpdateContext,
): UpdatePass {
  const actions: Action[] = [];
  let wakeAt = Infinity;
  for (const service of view.services) {
    if (!isUpdating(service)) continue;
    const pass = planUpdate(service, view.tasksOfService(service.id), view.nodes, ctx);
    actions.push(...pass.actions);
    if (pass.wakeAt !== undefined) wakeAt = Math.min(wakeAt, pass.wakeAt);
  }
  return Number.isFinite(wakeAt) ? { actions, wakeAt } : { actions };
}
