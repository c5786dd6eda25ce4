/**
 * The rebalance planner: a bounded list of task moves that improves the current placement. Swarm
 * never moves a running task, so a node that comes back after maintenance stays empty and a service
 * stays piled where it was; this plans the moves, and the orchestrator decides whether (and how
 * gently) to apply them.
 *
 * Goals:
 *  - `spread`: even out each service across its preference groups (level by level) and then across
 *    nodes. A move is taken only if it strictly lowers the sum of squared task counts at the first
 *    level where the source and target differ, so every move is an improvement and planning ends.
 *  - `consolidate`: free whole nodes. The least-full nodes whose tasks are all movable are emptied
 *    onto the fullest other busy nodes (binpack's choice), all of a node's tasks or none.
 *
 * Every move is checked with the same filter pipeline as placement, against the state after the
 * moves before it: no constraint broken, nothing overcommitted, no port or replicas-per-node clash,
 * no move onto a drained, paused or down node. Moves are meant to be applied in order.
 *
 * Planning scans the nodes for each candidate move (O(n) per move): it runs rarely and is bounded by
 * `maxMoves`, unlike placement.
 */

import { fieldValue } from './constraint.js';
import { fitsNow } from './filters.js';
import { NodeTable } from './node-table.js';
import { RequirementCompiler, type Requirement } from './requirements.js';
import { Scheduler } from './scheduler.js';
import type { ClusterState, PlacedTask, SchedNode } from './types.js';


export interface RebalanceOptions {
  goal: 'spread' | 'consolidate';
  /** Upper bound on the number of moves returned. */
  maxMoves: number;
  cpuWeight?: number;
  memoryWeight?: number;
}

export interface TaskMove {
  taskId: string;
  serviceId: string;
  from: string;
  to: string;
}

export interface RebalancePlan {
  moves: TaskMove[];
  /** Nodes the plan empties completely (consolidate). */
  freedNodes: string[];
}

interface Movable {
  task: PlacedTask;
  req: Requirement;
  node: number;
}

export function planRebalance(cluster: ClusterState, tasks: readonly PlacedTask[], opts: RebalanceOptions): RebalancePlan {
  const table = new NodeTable([...cluster.nodes]);
  const compiler = new RequirementCompiler();
  const movable: Movable[] = [];
  for (const task of tasks) {
    const node = table.indexById.get(task.nodeId);
    if (node === undefined) continue;
    const req = compiler.compile(task);
    if (req.error !== undefined) continue;
    movable.push({ task, req, node });
  }
  const maxMoves = Math.max(0, Math.floor(opts.maxMoves));
  if (opts.goal === 'spread') return { moves: planSpread(table, movable, maxMoves), freedNodes: [] };
  return planConsolidate(cluster, table, movable, maxMoves, opts.cpuWeight ?? 1, opts.memoryWeight ?? 1);
}

const MAX_SOURCES = 16;

function move(table: NodeTable, m: Movable, to: number, moves: TaskMove[]): void {
  table.apply(m.node, m.req, -1);
  table.apply(to, m.req, 1);
  moves.push({ taskId: m.task.id, serviceId: m.task.serviceId, from: table.nodes[m.node]!.id, to: table.nodes[to]!.id });
  m.node = to;
}

function planSpread(table: NodeTable, movable: Movable[], maxMoves: number): TaskMove[] {
  const moves: TaskMove[] = [];
  const byService = new Map<string, Movable[]>();
  for (const m of movable) {
    let list = byService.get(m.req.serviceId);
    if (!list) byService.set(m.req.serviceId, (list = []));
    list.push(m);
  }
  const services = [...byService.keys()].sort();

  // Round-robin over services, one move each per round, so a small budget is shared fairly. A
  // service with no improving move leaves the rotation (other services' moves rarely create one).
  let active = services;
  while (active.length > 0 && moves.length < maxMoves) {
    const next: string[] = [];
    for (const service of active) {
      if (moves.length >= maxMoves) break;
      const best = bestSpreadMove(table, byService.get(service)!);
      if (best) {
        move(table, best.m, best.to, moves);
        next.push(service);
      }
    }
    active = next;
  }
  return moves;
}

/**
 * The move of one task of a service that lowers its imbalance the most, or undefined. Levels are the
 * task's preferences, then the node itself; counts are the service's tasks on nodes the task could
 * run on, grouped by the level's value path.
 */
function bestSpreadMove(table: NodeTable, tasks: Movable[]): { m: Movable; to: number } | undefined {
  const counts = table.countsFor(tasks[0]!.req.serviceId);
  // Without preferences, a service whose busiest node runs one task is as even as it can be.
  if (tasks.every((m) => m.req.preferences.length === 0)) {
    let max = 0;
    for (const c of counts.values()) if (c > max) max = c;
    if (max <= 1) return undefined;
  }
  let best: { m: Movable; to: number; gain: number[] } | undefined;
  const triedSources = new Set<string>();
  const targetsOf = new Map<Requirement, number[]>();
  const pathCache = new Map<Requirement, (string[] | undefined)[]>();
  // Sources from the most loaded node down; one task per (node, task shape) is enough to try.
  const sources = [...tasks].sort((a, b) => (counts.get(b.node) ?? 0) - (counts.get(a.node) ?? 0) || a.node - b.node);
  for (const m of sources) {
    const tried = `${m.node}\u0000${m.req.groupKey}`;
    if (triedSources.has(tried)) continue;
    // The biggest gains start from the most loaded nodes; bounding the sources bounds the cost.
    if (triedSources.size >= MAX_SOURCES) break;
    triedSources.add(tried);
    let cache = pathCache.get(m.req);
    if (!cache) pathCache.set(m.req, (cache = new Array(table.size)));
    const pathsOf = cache;
    const paths = (i: number): string[] => {
      let p = pathsOf[i];
      if (!p) {
        const node = table.nodes[i]!;
        const values = m.req.preferences.map((f) => fieldValue(node, f));
        p = pathsOf[i] = values.map((_, l) => values.slice(0, l + 1).join('\u0000'));
      }
      return p;
    };
    // Nodes that could take one more task of this shape: the same for every source of the shape.
    let targets = targetsOf.get(m.req);
    if (!targets) {
      targets = [];
      for (let to = 0; to < table.size; to++) if (fitsNow(table, to, m.req)) targets.push(to);
      targetsOf.set(m.req, targets);
    }
    // Group counts over the nodes this task may run on (plus where it is now).
    const groupCounts = new Map<string, number>();
    if (m.req.preferences.length > 0) {
      for (const [i, c] of counts) {
        if (i !== m.node && !eligibleIgnoringLoad(table, i, m.req)) continue;
        for (const p of paths(i)) groupCounts.set(p, (groupCounts.get(p) ?? 0) + c);
      }
    }
    const fromPaths = paths(m.node);
    const fromCount = counts.get(m.node) ?? 0;
    for (const to of targets) {
      if (to === m.node) continue;
      const toPaths = paths(to);
      // Per level, half the drop in the sum of squared counts: (count at source) - (count at target) - 1.
      const gain: number[] = [];
      for (let l = 0; l < fromPaths.length; l++) {
        gain.push(fromPaths[l] === toPaths[l] ? 0 : (groupCounts.get(fromPaths[l]!) ?? 0) - (groupCounts.get(toPaths[l]!) ?? 0) - 1);
      }
      gain.push(fromCount - (counts.get(to) ?? 0) - 1);
      const first = gain.find((g) => g !== 0) ?? 0;
      if (first <= 0) continue;
      if (!best || lexGreater(gain, best.gain)) best = { m, to, gain };
    }
  }
  return best ? { m: best.m, to: best.to } : undefined;
}

/** Static eligibility without readiness: a task's group counts include nodes it could run on. */
function eligibleIgnoringLoad(table: NodeTable, i: number, req: Requirement): boolean {
  return fitsNow(table, i, { ...req, cpu: 0, memory: 0, generic: [], ports: [], maxReplicasPerNode: 0 });
}

function lexGreater(a: number[], b: number[]): boolean {
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    const d = (a[k] ?? 0) - (b[k] ?? 0);
    if (d !== 0) return d > 0;
  }
  return false;
}

/**
 * Consolidation reuses the placement engine: the busy nodes are the only ones open, and a candidate
 * node's tasks are placed as one call (fullest nodes first). If they all fit, the node is closed and
 * the moves are kept; otherwise they are released and the node reopened. O(k log n) per candidate.
 */
function planConsolidate(
  cluster: ClusterState,
  table: NodeTable,
  movable: Movable[],
  maxMoves: number,
  cpuWeight: number,
  memoryWeight: number,
): RebalancePlan {
  const moves: TaskMove[] = [];
  const freed: string[] = [];
  const onNode = new Map<number, Movable[]>();
  for (const m of movable) {
    let list = onNode.get(m.node);
    if (!list) onNode.set(m.node, (list = []));
    list.push(m);
  }
  const fullness = (i: number): number => table.fullness(i, cpuWeight, memoryWeight);
  // Only nodes whose every task is movable can be freed; try the emptiest first.
  const candidates = [...onNode.keys()]
    .filter((i) => table.taskCount[i] === onNode.get(i)!.length)
    .sort((a, b) => fullness(a) - fullness(b) || a - b);
  // Empty nodes stay closed: consolidating must not open new ones. (The nodes keep their current
  // reservations, so a closed candidate still counts its old tasks; it takes no new ones anyway.)
  const closedNode = (n: SchedNode): SchedNode => ({ ...n, availability: 'pause' });
  const nodes = cluster.nodes.map((n, i) => (table.taskCount[i] === 0 ? closedNode(n) : n));
  const scheduler = new Scheduler({ nodes }, { strategy: 'binpack', cpuWeight, memoryWeight });
  const received = new Set<number>();
  for (const c of candidates) {
    const list = onNode.get(c)!;
    // A node that received tasks is not emptied later: no task moves twice in one plan.
    if (moves.length + list.length > maxMoves || received.has(c)) continue;
    scheduler.updateNodes([closedNode(nodes[c]!)]);
    const result = scheduler.place(
      list.map((m) => m.task),
      { explain: false },
    );
    if (result.unplaced.length > 0) {
      scheduler.release(result.assignments.map((a) => a.taskId));
      scheduler.updateNodes([nodes[c]!]);
      continue;
    }
    const byTask = new Map(list.map((m) => [m.task.id, m] as const));
    for (const a of result.assignments) {
      const m = byTask.get(a.taskId)!;
      const to = table.indexById.get(a.nodeId)!;
      moves.push({ taskId: m.task.id, serviceId: m.task.serviceId, from: table.nodes[c]!.id, to: a.nodeId });
      received.add(to);
    }
    freed.push(table.nodes[c]!.id);
  }
  return { moves, freedNodes: freed };
}
