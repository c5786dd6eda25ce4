/**
 * Rebalance: moves a replicated service's running tasks to even out its spread
 * over the nodes (e.g. after nodes joined or came back from drain), with the scheduler's rebalance
 * planner. A move is start-first whatever the update order: the replacement is created already
 * assigned to its target node in the same slot, and the orchestrator stops the old task once the
 * new one is up (as for a start-first update), so the service never runs short during a rebalance.
 */
import { planRebalance, type PlacedTask } from '../../scheduler/index.js';
import { isTerminal, type NodeObject, type ServiceObject, type TaskObject } from '../../api/objects.js';
import { toSchedNode, toTaskToPlace } from './placement.js';
import type { Action } from '../state/store.js';
import { isUp, isUpdating } from './updater.js';

export interface RebalanceView {
  nodes: NodeObject[];
  tasksOfNode(nodeId: string): TaskObject[];
  tasksOfService(serviceId: string): TaskObject[];
}

/** The moves as actions: one new task per moved slot, assigned to the planner's target node. */
export function rebalanceActions(service: ServiceObject, view: RebalanceView, ctx: { now: string; newId: () => string }): Action[] {
  if (!('replicated' in service.spec.mode)) return [];
  const live = view.tasksOfService(service.id).filter((t) => t.desiredState === 'running' && t.nodeId && t.status.state === 'running');
  if (live.length === 0) return [];
  const cluster = { nodes: view.nodes.map((n) => toSchedNode(n, view.tasksOfNode(n.id))) };
  // Replicated tasks are placed anew, so no node pin: the planner may move them anywhere they fit.
  const placed: PlacedTask[] = live.map((t) => ({ ...toTaskToPlace({ ...t, nodeId: '' }), nodeId: t.nodeId }));
  const { moves } = planRebalance(cluster, placed, { goal: 'spread', maxMoves: live.length });
  const target = new Map<string, string>();
  for (const m of moves) target.set(m.taskId, m.to);
  const actions: Action[] = [];
  for (const t of live) {
    const to = target.get(t.id);
    if (!to || to === t.nodeId || isTerminal(t.status.state)) continue;
    actions.push({
      op: 'create', kind: 'task', object: {
        id: ctx.newId(), meta: { version: 0, createdAt: '', updatedAt: '' }, serviceId: service.id, serviceName: service.spec.name,
        slot: t.slot, nodeId: to, spec: service.spec.task, specVersion: service.specVersion, desiredState: 'running',
        status: { state: 'assigned', timestamp: ctx.now, message: `rebalanced from node ${t.nodeId}`, error: '', exitCode: 0, containerId: '' },
        networks: [],
      },
    });
  }
  return actions;
}

/**
 * The rebalances users asked for (`service update --rebalance` records the request on the service):
 * each request is cleared in the same proposal that makes its moves, so it is acted on once, by
 * whichever leader sees it first.
 */
export function requestedRebalanceActions(services: ServiceObject[], view: RebalanceView, ctx: { now: string; newId: () => string }): Action[] {
  const actions: Action[] = [];
  for (const service of services) {
    if (!service.rebalanceRequestedAt) continue;
    const { rebalanceRequestedAt: _done, ...cleared } = service;
    actions.push({ op: 'update', kind: 'service', object: cleared, expectVersion: service.meta.version }, ...rebalanceActions(service, view, ctx));
  }
  return actions;
}

/**
 * The swarm's automatic rebalance (`swarm update --auto-rebalance true`), run by the leader after a
 * node joins or comes back: the moves of one steady service (replicated, not updating, every slot
 * with one live task, all up) at a time, so that each plan sees the moves before it. `settled` once
 * every replicated service is steady and none has a move left.
 */
export function autoRebalanceActions(
  services: ServiceObject[], view: RebalanceView, ctx: { now: string; newId: () => string },
): { actions: Action[]; settled: boolean } {
  let settled = true;
  for (const service of services) {
    if (!('replicated' in service.spec.mode)) continue;
    const live = view.tasksOfService(service.id).filter((t) => t.desiredState === 'running' && !isTerminal(t.status.state));
    const steady = !isUpdating(service) && live.length === service.spec.mode.replicated.replicas
      && new Set(live.map((t) => t.slot)).size === live.length && live.every(isUp);
    if (!steady) { settled = false; continue; }
    const actions = rebalanceActions(service, view, ctx);
    if (actions.length > 0) return { actions, settled: false };
  }
  return { actions: [], settled };
}
