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
 * Both goals drive the placement engine (`Scheduler`): release a task, place it again, keep the move
 * if it improves the goal, undo it otherwise. Planning is bounded by `maxMoves`.
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
  if (opts.goal === 'spread') return { moves: planSpread(cluster, table, movable, maxMoves), freedNodes: [] };
  return planConsolidate(cluster, table, movable, maxMoves, opts.cpuWeight ?? 1, opts.memoryWeight ?? 1);
}

const MAX_SOURCES = 4;

function move(table: NodeTable, m: Movable, to: number, moves: TaskMove[]): void {
  table.apply(m.node, m.req, -1);
  table.apply(to, m.req, 1);
  moves.push({ taskId: m.task.id, serviceId: m.task.serviceId, from: table.nodes[m.node]!.id, to: table.nodes[to]!.id });
  m.node = to;
}

/**
 * Spread planning lets the placement engine pick targets: a spread-strategy scheduler over the
 * cluster without the movable tasks, which then adopts them, so any one can be released and placed
 * again (O(log n) per try). A try is kept only if it strictly improves the service's balance.
 */
function planSpread(cluster: ClusterState, table: NodeTable, movable: Movable[], maxMoves: number): TaskMove[] {
  const moves: TaskMove[] = [];
  const byService = new Map<string, Movable[]>();
  for (const m of movable) {
    let list = byService.get(m.req.serviceId);
    if (!list) byService.set(m.req.serviceId, (list = []));
    list.push(m);
  }
  const services = [...byService.keys()].sort();
  const scheduler = new Scheduler({ nodes: withoutTasks(cluster.nodes, movable) }, { strategy: 'spread' });
  scheduler.adopt(movable.map((m) => m.task));

  // Round-robin over services, one move each per round, so a small budget is shared fairly. A
  // service with no improving move leaves the rotation (other services' moves rarely create one).
  let active = services;
  while (active.length > 0 && moves.length < maxMoves) {
    const next: string[] = [];
    for (const service of active) {
      if (moves.length >= maxMoves) break;
      if (spreadOnce(table, scheduler, byService.get(service)!, moves)) next.push(service);
    }
    active = next;
  }
  return moves;
}

/** Move one task of a service if that strictly improves its balance; false if no try did. */
function spreadOnce(table: NodeTable, scheduler: Scheduler, tasks: Movable[], moves: TaskMove[]): boolean {
  const counts = table.countsFor(tasks[0]!.req.serviceId);
  // Without preferences, a service whose busiest node runs one task is as even as it can be.
  if (tasks.every((m) => m.req.preferences.length === 0)) {
    let max = 0;
    for (const c of counts.values()) if (c > max) max = c;
    if (max <= 1) return false;
  }
  // Sources: the most loaded group first (level by level), then the most loaded node.
  const balance = new Balance(table, counts);
  const rank = new Map(tasks.map((m) => [m, balance.loadOf(m, m.node)] as const));
  const sources = [...tasks].sort((a, b) => lexCompare(rank.get(b)!, rank.get(a)!) || a.node - b.node);
  const tried = new Set<string>();
  for (const m of sources) {
    const key = `${m.node}\u0000${m.req.groupKey}`;
    if (tried.has(key)) continue;
    // The biggest gains start from the most loaded nodes; bounding the sources bounds the cost.
    if (tried.size >= MAX_SOURCES) break;
    tried.add(key);
    const from = m.node;
    scheduler.release([m.task.id]);
    const placed = scheduler.place([m.task], { explain: false }).assignments[0];
    const to = placed ? table.indexById.get(placed.nodeId)! : -1;
    if (to >= 0 && to !== from && firstNonZero(balance.gain(m, to)) > 0) {
      move(table, m, to, moves);
      return true;
    }
    if (placed) scheduler.release([m.task.id]);
    scheduler.adopt([{ ...m.task, nodeId: table.nodes[from]!.id }]);
  }
  return false;
}

/**
 * A service's balance, level by level: its task's preferences, then the node itself. Counts are the
 * service's tasks on nodes the task could run on, grouped by the level's value path.
 */
class Balance {
  private readonly groupCounts = new Map<Requirement, Map<string, number>>();
  private readonly paths = new Map<Requirement, (string[] | undefined)[]>();

  constructor(
    private readonly table: NodeTable,
    private readonly counts: Map<number, number>,
  ) {}

  /** How loaded node i's groups and the node itself are, for a task like m. */
  loadOf(m: Movable, i: number): number[] {
    const groups = this.groupsFor(m);
    return [...this.pathsOf(m.req, i).map((p) => groups.get(p) ?? 0), this.counts.get(i) ?? 0];
  }

  /** Per level, half the drop in the sum of squared counts if m moves to `to`. */
  gain(m: Movable, to: number): number[] {
    const groups = this.groupsFor(m);
    const fromPaths = this.pathsOf(m.req, m.node);
    const toPaths = this.pathsOf(m.req, to);
    const gain: number[] = [];
    for (let l = 0; l < fromPaths.length; l++) {
      gain.push(fromPaths[l] === toPaths[l] ? 0 : (groups.get(fromPaths[l]!) ?? 0) - (groups.get(toPaths[l]!) ?? 0) - 1);
    }
    gain.push((this.counts.get(m.node) ?? 0) - (this.counts.get(to) ?? 0) - 1);
    return gain;
  }

  private groupsFor(m: Movable): Map<string, number> {
    let g = this.groupCounts.get(m.req);
    if (!g) {
      g = new Map();
      if (m.req.preferences.length > 0) {
        for (const [i, c] of this.counts) {
          if (i !== m.node && !eligibleIgnoringLoad(this.table, i, m.req)) continue;
          for (const p of this.pathsOf(m.req, i)) g.set(p, (g.get(p) ?? 0) + c);
        }
      }
      this.groupCounts.set(m.req, g);
    }
    return g;
  }

  private pathsOf(req: Requirement, i: number): string[] {
    let cache = this.paths.get(req);
    if (!cache) this.paths.set(req, (cache = []));
    let p = cache[i];
    if (!p) {
      const node = this.table.nodes[i]!;
      const values = req.preferences.map((f) => fieldValue(node, f));
      p = cache[i] = values.map((_, l) => values.slice(0, l + 1).join('\u0000'));
    }
    return p;
  }
}

function firstNonZero(a: number[]): number {
  return a.find((g) => g !== 0) ?? 0;
}

function lexCompare(a: number[], b: number[]): number {
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    const d = (a[k] ?? 0) - (b[k] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The nodes as they would be without the movable tasks (reservations, ports, per-service counts). */
function withoutTasks(nodes: readonly SchedNode[], movable: Movable[]): SchedNode[] {
  const out = nodes.map((n) => ({
    ...n,
    reserved: { nanoCPUs: n.reserved?.nanoCPUs ?? 0, memoryBytes: n.reserved?.memoryBytes ?? 0, generic: { ...(n.reserved?.generic ?? {}) } },
    hostPortsInUse: [...(n.hostPortsInUse ?? [])],
    serviceTasks: { ...(n.serviceTasks ?? {}) },
  }));
  for (const m of movable) {
    const n = out[m.node]!;
    n.reserved.nanoCPUs -= m.req.cpu;
    n.reserved.memoryBytes -= m.req.memory;
    for (const [k, v] of m.req.generic) n.reserved.generic[k] = (n.reserved.generic[k] ?? 0) - v;
    const ports = new Set(m.req.ports);
    n.hostPortsInUse = n.hostPortsInUse.filter((p) => !ports.has(`${p.protocol}/${p.port}`));
    n.serviceTasks[m.req.serviceId] = (n.serviceTasks[m.req.serviceId] ?? 0) - 1;
  }
  return out;
}

/** Static eligibility without readiness: a task's group counts include nodes it could run on. */
function eligibleIgnoringLoad(table: NodeTable, i: number, req: Requirement): boolean {
  return fitsNow(table, i, { ...req, cpu: 0, memory: 0, generic: [], ports: [], maxReplicasPerNode: 0 });
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
