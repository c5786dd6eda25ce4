/**
 * Placement. `Scheduler` keeps the node state and the node indexes between calls, so a manager that
 * schedules often pays the O(n log n) index build once; `schedule()` is the one-shot form.
 *
 * One `place()` call:
 *  1. compiles each task and groups identical ones (same service, reservations, constraints,
 *     preferences, ports, max replicas, platforms);
 *  2. orders the groups biggest reservation first (first-fit-decreasing's insight: big tasks placed
 *     early still find room, small ones fill the gaps);
 *  3. places each group in one pass against the index of its statically eligible nodes (built once
 *     per distinct constraint set and kept), split into preference groups when the task has spread
 *     preferences;
 *  4. for a group that runs out of nodes, runs the full filter pipeline once to explain why, and
 *     reports the rest of that group unplaced with that reason.
 */

import { ChangeLog } from './change-log.js';
import { explainRejections, fitsBeyondCpuMemory } from './filters.js';
import { NodeTable } from './node-table.js';
import { OrderedIndex } from './ordered-index.js';
import { PlacedTasks } from './placed-tasks.js';
import { RequirementCompiler, type Requirement } from './requirements.js';
import { binpackKey, spreadKey } from './strategy.js';
import type { Assignment, ClusterState, PlacedTask, PlaceOptions, SchedNode, ScheduleOptions, ScheduleResult, Strategy, TaskToPlace, Unplaced } from './types.js';
import { Views, type CandidateSet } from './views.js';

export class Scheduler {
  private table: NodeTable;
  private readonly strategy: Strategy;
  private readonly cpuWeight: number;
  private readonly memoryWeight: number;
  private readonly spareGenericNodes: boolean;
  private readonly spreadReplicas: boolean;
  private readonly compiler = new RequirementCompiler();
  private log!: ChangeLog;
  private views!: Views;
  /** Spread's per-batch indexes, reused from batch to batch. */
  private scratch: OrderedIndex[] = [];
  private explain = true;
  private readonly placed = new PlacedTasks();

  private baseNodes: SchedNode[];

  constructor(cluster: ClusterState, opts: ScheduleOptions = {}) {
    this.strategy = opts.strategy ?? 'binpack';
    this.cpuWeight = opts.cpuWeight ?? 1;
    this.memoryWeight = opts.memoryWeight ?? 1;
    this.spareGenericNodes = opts.spareGenericNodes ?? false;
    this.spreadReplicas = opts.spreadReplicas ?? false;
    if (!(this.cpuWeight >= 0 && this.memoryWeight >= 0 && this.cpuWeight + this.memoryWeight > 0)) {
      throw new Error('cpuWeight and memoryWeight must be non-negative and not both zero');
    }
    this.baseNodes = [...cluster.nodes];
    this.table = new NodeTable(this.baseNodes);
    this.resetIndexes();
  }

  /** Place tasks; those that fit are accounted on their node until `release`d. */
  place(tasks: readonly TaskToPlace[], opts: PlaceOptions = {}): ScheduleResult {
    this.log.startCall();
    this.explain = opts.explain ?? true;
    const nodeOfTask: (number | undefined)[] = new Array(tasks.length);
    const reasonOfTask: (string | undefined)[] = new Array(tasks.length);

    // 1. Group identical tasks, remembering the order groups first appeared.
    // Keyed by the compiled Requirement itself: the compiler returns one object per distinct group key.
    const groups = new Map<Requirement, { req: Requirement; tasks: number[] }>();
    for (let k = 0; k < tasks.length; k++) {
      const task = tasks[k]!;
      const req = this.compiler.compile(task);
      let g = groups.get(req);
      if (!g) {
        g = { req, tasks: [] };
        groups.set(req, g);
      }
      g.tasks.push(k);
    }

    // 2. Biggest first; the sort is stable, so equal sizes keep their order of appearance.
    const [refCpu, refMemory] = this.referenceSize();
    const size = (r: Requirement): number => (refCpu > 0 ? r.cpu / refCpu : 0) + (refMemory > 0 ? r.memory / refMemory : 0);
    // Tasks needing generic resources (GPUs) go first: they have the fewest places to go.
    const ordered = [...groups.values()].sort((a, b) => Math.sign(b.req.generic.length) - Math.sign(a.req.generic.length) || size(b.req) - size(a.req));

    // 3-4. Place each group.
    // (A task id given twice is placed once; the second copy is reported as already placed.)
    for (const g of ordered) this.placeGroup(g.req, g.tasks, tasks, nodeOfTask, reasonOfTask);

    const assignments: Assignment[] = [];
    const unplaced: Unplaced[] = [];
    for (let k = 0; k < tasks.length; k++) {
      const n = nodeOfTask[k];
      if (n !== undefined) assignments.push({ taskId: tasks[k]!.id, nodeId: this.table.nodes[n]!.id });
      else unplaced.push({ taskId: tasks[k]!.id, reason: reasonOfTask[k] ?? 'not placed' });
    }
    return { assignments, unplaced };
  }

  /**
   * Record tasks that already run (for example after a manager restart) without checking them, so
   * they can be `release`d later. Their node's `reserved` must not include them already. Tasks on
   * unknown nodes, and tasks already recorded, are ignored.
   */
  adopt(tasks: readonly PlacedTask[]): void {
    for (const task of tasks) {
      const i = this.table.indexById.get(task.nodeId);
      if (i === undefined || this.placed.has(task.id)) continue;
      const req = this.compiler.compile(task);
      this.table.apply(i, req, 1);
      this.placed.add(task.id, task.nodeId, req);
      this.log.record(i);
    }
  }

  /** Forget tasks (stopped, removed, or about to be re-placed) and give their resources back. */
  release(taskIds: Iterable<string>): void {
    for (const id of taskIds) {
      const rec = this.placed.delete(id);
      if (!rec) continue;
      const i = this.table.indexById.get(rec.nodeId);
      if (i === undefined) continue;
      this.table.apply(i, rec.req, -1);
      this.log.record(i);
    }
  }

  /**
   * Replace nodes by id (or add new ones). Tasks placed through this scheduler stay accounted on
   * their node. Rebuilds the state and indexes: O(n log n + placed tasks), meant for node events,
   * not for every placement.
   */
  updateNodes(nodes: readonly SchedNode[]): void {
    // Drain, pause, activate, down, up: the common node events only change which indexes a node
    // belongs to, so they are applied in place (O(log n) per index) instead of rebuilding everything.
    const positions = nodes.map((n) => this.table.indexById.get(n.id));
    if (positions.every((i, k) => i !== undefined && onlyAvailabilityDiffers(this.baseNodes[i]!, nodes[k]!))) {
      nodes.forEach((n, k) => this.setAvailability(positions[k]!, n));
      return;
    }
    const byId = new Map(nodes.map((n) => [n.id, n] as const));
    const next = this.baseNodes.map((n) => byId.get(n.id) ?? n);
    for (const n of nodes) if (!this.table.indexById.has(n.id)) next.push(n);
    this.rebuild(next);
  }

  /** Remove nodes; returns the ids of tasks placed through this scheduler that were on them (now forgotten). */
  removeNodes(nodeIds: readonly string[]): string[] {
    const gone = new Set(nodeIds);
    const lost: string[] = [];
    for (const [taskId, nodeId] of this.placed.entries()) {
      if (gone.has(nodeId)) {
        lost.push(taskId);
        this.placed.delete(taskId);
      }
    }
    this.rebuild(this.baseNodes.filter((n) => !gone.has(n.id)));
    return lost;
  }

  /** The node a task was placed on by this scheduler. */
  nodeOf(taskId: string): string | undefined {
    return this.placed.nodeOf(taskId);
  }

  /** Free resources and task count of a node as the scheduler sees them now. */
  usage(nodeId: string): { freeNanoCPUs: number; freeMemoryBytes: number; tasks: number; generic: Record<string, number> } | undefined {
    const i = this.table.indexById.get(nodeId);
    if (i === undefined) return undefined;
    return {
      freeNanoCPUs: this.table.freeCpu[i]!,
      freeMemoryBytes: this.table.freeMemory[i]!,
      tasks: this.table.taskCount[i]!,
      generic: Object.fromEntries(this.table.genericFree[i] ?? []),
    };
  }

  private setAvailability(i: number, node: SchedNode): void {
    this.baseNodes[i] = node;
    this.table.describe(i, node);
    this.views.availabilityChanged(i);
  }

  private rebuild(nodes: SchedNode[]): void {
    this.baseNodes = nodes;
    this.table = new NodeTable(nodes);
    for (const [, nodeId, req] of this.placed.entries()) {
      const i = this.table.indexById.get(nodeId);
      if (i !== undefined) this.table.apply(i, req, 1);
    }
    this.resetIndexes();
  }

  private resetIndexes(): void {
    this.log = new ChangeLog(this.table.size);
    this.views = new Views(this.table, this.log, (req) => this.newBinpackIndex(req));
    this.scratch = [];
  }

  private referenceSize(): [number, number] {
    let c = 0;
    let m = 0;
    for (let i = 0; i < this.table.size; i++) {
      if (this.table.totalCpu[i]! > c) c = this.table.totalCpu[i]!;
      if (this.table.totalMemory[i]! > m) m = this.table.totalMemory[i]!;
    }
    return [c, m];
  }

  /** A persistent binpack index; it starts in sync with the log because it reads the current state. */
  private newBinpackIndex(req: Requirement): OrderedIndex {
    const key = binpackKey(this.table, this.cpuWeight, this.memoryWeight, this.spareGenericNodes && req.generic.length === 0);
    const index = new OrderedIndex(this.table.size, this.table.freeCpu, this.table.freeMemory, key);
    this.log.register(index);
    return index;
  }

  private placeGroup(
    req: Requirement,
    taskPositions: number[],
    tasks: readonly TaskToPlace[],
    nodeOfTask: (number | undefined)[],
    reasonOfTask: (string | undefined)[],
  ): void {
    if (taskPositions.length === 0) return;
    if (req.error !== undefined) {
      for (const k of taskPositions) reasonOfTask[k] = req.error;
      return;
    }
    const view = this.views.view(req);
    const groups = req.preferences.length > 0 ? this.views.preferenceGroups(view, req) : undefined;
    // The indexes this batch searches: the persistent binpack ones, or the persistent spread ones.
    let indexes: OrderedIndex[];
    const serviceCounts = this.table.countsFor(req.serviceId);
    // Spread: each candidate set has a persistent index of its nodes by fewest tasks overall, and a
    // scratch index for this batch holding the nodes that already run the service, ranked by
    // (tasks of the service, tasks overall). Any node without the service beats every node with it,
    // so a pick asks the first and falls back to the second. Only the service's own nodes move
    // between the two, so a batch costs O((k + existing) log n), not a re-sort of all nodes.
    const spread = this.strategy === 'spread';
    const sets: CandidateSet[] = groups ? groups.leaves : [view];
    const scratch: OrderedIndex[] = [];
    if (spread) {
      indexes = sets.map((set) => this.spreadIndexOf(set, () => this.views.membersOf(set, view, groups)));
      const key = spreadKey(this.table, req.serviceId);
      for (let l = 0; l < indexes.length; l++) scratch.push(this.scratchIndex(l, key));
      for (const [i] of serviceCounts) {
        for (let l = 0; l < indexes.length; l++) {
          if (!indexes[l]!.has(i)) continue;
          indexes[l]!.remove(i);
          scratch[l]!.insert(i);
        }
      }
    } else {
      indexes = sets.map((set) => set.index);
      for (const index of indexes) this.log.sync(index);
    }

    // Preference bookkeeping: tasks of this service per group, at every level.
    const levelCounts = new Map<string, number>();
    if (groups) {
      for (const [i, c] of this.table.countsFor(req.serviceId)) {
        const leaf = groups.leaves[groups.leafOf[i]!];
        if (!leaf || view.mask[i] !== 1) continue;
        for (const k of leaf.levelKeys) levelCounts.set(k, (levelCounts.get(k) ?? 0) + c);
      }
    }
    const leafOrder = groups ? groups.leaves.map((_, l) => l) : [0];
    const compareLeaves = (a: number, b: number): number => {
      const la = groups!.leaves[a]!.levelKeys;
      const lb = groups!.leaves[b]!.levelKeys;
      for (let l = 0; l < la.length; l++) {
        const d = (levelCounts.get(la[l]!) ?? 0) - (levelCounts.get(lb[l]!) ?? 0);
        if (d !== 0) return d;
      }
      return a - b;
    };

    // Nodes taken out of an index for this batch because they fail a check that cannot start passing
    // while the batch only adds tasks (ports, replicas per node, generic resources).
    const excluded: [OrderedIndex, number, number][] = [];
    // Binpack without preferences fills a chosen node with as many tasks of the batch as fit: it stays
    // the first node that fits in the call's order, so this is what task-by-task picking would do,
    // with one index search per node instead of one per task.
    const fillRuns = this.strategy === 'binpack' && !groups;
    // Binpack with `spreadReplicas`: no node takes more than a fair share of the service (its tasks
    // in the view over the view's nodes, rounded up) while some node still has room under that share.
    let cap = Infinity;
    if (this.spreadReplicas && !spread) {
      let existing = 0;
      for (const [i, c] of serviceCounts) if (view.mask[i] === 1) existing += c;
      const nodes = Math.max(1, view.index.size); // the view's index holds exactly its current members
      cap = Math.max(1, Math.ceil((existing + taskPositions.length) / nodes));
    }
    let t = 0;
    while (t < taskPositions.length) {
      const first = taskPositions[t]!;
      const earlier = this.placed.nodeOf(tasks[first]!.id);
      if (earlier !== undefined) {
        reasonOfTask[first] = `task ${tasks[first]!.id} is already placed on node ${earlier}`;
        t++;
        continue;
      }
      let node = -1;
      let chosenSet = 0;
      if (!groups) {
        node = this.pick(indexes[0]!, req, excluded, cap);
        if (node < 0 && spread) node = this.pick(scratch[0]!, req, excluded, cap);
      } else {
        if (leafOrder.length > 1) leafOrder.sort(compareLeaves);
        for (const l of leafOrder) {
          node = this.pick(indexes[l]!, req, excluded, cap);
          if (node < 0 && spread) node = this.pick(scratch[l]!, req, excluded, cap);
          if (node >= 0) {
            chosenSet = l;
            for (const k of groups.leaves[l]!.levelKeys) levelCounts.set(k, (levelCounts.get(k) ?? 0) + 1);
            break;
          }
        }
      }
      if (node < 0 && cap !== Infinity) {
        // Every node is at its fair share (or full): double up after all, with every node back in.
        cap = Infinity;
        for (const [index, i, key] of excluded) index.insert(i, key);
        excluded.length = 0;
        continue;
      }
      if (node < 0) {
        const reason = this.explain ? explainRejections(this.table, req) : 'no suitable node';
        for (let r = t; r < taskPositions.length; r++) reasonOfTask[taskPositions[r]!] ??= reason;
        break;
      }
      const nodeId = this.table.nodes[node]!.id;
      for (;;) {
        const k = taskPositions[t]!;
        nodeOfTask[k] = node;
        this.table.apply(node, req, 1, serviceCounts);
        this.placed.add(tasks[k]!.id, nodeId, req);
        t++;
        if (!fillRuns || t >= taskPositions.length || this.placed.has(tasks[taskPositions[t]!]!.id)) break;
        if (this.table.freeCpu[node]! < req.cpu || this.table.freeMemory[node]! < req.memory) break;
        if (!fitsBeyondCpuMemory(this.table, node, req)) break;
        if ((serviceCounts.get(node) ?? 0) >= cap) break;
      }
      this.log.record(node);
      // The indexes in use stay exact as we go; others catch up from the log later.
      if (spread) {
        // The node now runs the service: it belongs in the scratch index, re-ranked.
        indexes[chosenSet]!.remove(node);
        scratch[chosenSet]!.remove(node);
        scratch[chosenSet]!.insert(node);
      } else {
        // Binpack keeps the call's order and only refreshes the free-resource maxima.
        for (const index of indexes) index.refresh(node);
      }
    }
    for (const [index, i, key] of excluded) index.insert(i, key);
    if (spread) {
      // Everything in the scratch indexes goes back to the persistent ones, ranked by its current
      // task count; with that, the persistent ones reflect every change so far.
      for (let l = 0; l < scratch.length; l++) {
        for (const i of scratch[l]!.toArray()) indexes[l]!.insert(i);
        scratch[l]!.clear();
      }
      for (const index of indexes) this.log.markFresh(index, true);
    } else {
      for (const index of indexes) this.log.markFresh(index, false);
    }
  }

  /** A candidate set's persistent spread index (fewest tasks overall first), synced exactly. */
  private spreadIndexOf(set: CandidateSet, members: () => number[]): OrderedIndex {
    let index = set.spreadIndex;
    if (!index) {
      const table = this.table;
      index = new OrderedIndex(table.size, table.freeCpu, table.freeMemory, (i) => -table.taskCount[i]!);
      index.build(members());
      this.log.register(index, true);
      set.spreadIndex = index;
    }
    this.log.sync(index);
    return index;
  }

  /** Reusable scratch indexes (their typed arrays are sized to the cluster: allocate them once). */
  private scratchIndex(slot: number, key: (i: number) => number): OrderedIndex {
    let index = this.scratch[slot];
    if (!index) {
      index = new OrderedIndex(this.table.size, this.table.freeCpu, this.table.freeMemory, key);
      this.scratch[slot] = index;
    } else {
      index.clear(key);
    }
    return index;
  }

  /** The most preferred node of `index` that passes every dynamic check (and the replica cap), or -1. */
  private pick(index: OrderedIndex, req: Requirement, excluded: [OrderedIndex, number, number][], cap: number): number {
    for (;;) {
      const i = index.best(req.cpu, req.memory);
      if (i < 0) return -1;
      if (fitsBeyondCpuMemory(this.table, i, req) && (cap === Infinity || this.table.serviceCount(req.serviceId, i) < cap)) return i;
      excluded.push([index, i, index.keyOfMember(i)]);
      index.remove(i);
    }
  }
}

/** One-shot placement: the same as `new Scheduler(cluster, opts).place(tasks)`. */
export function schedule(cluster: ClusterState, tasks: readonly TaskToPlace[], opts: ScheduleOptions = {}): ScheduleResult {
  return new Scheduler(cluster, opts).place(tasks);
}

function onlyAvailabilityDiffers(a: SchedNode, b: SchedNode): boolean {
  return JSON.stringify({ ...a, availability: '', status: '' }) === JSON.stringify({ ...b, availability: '', status: '' });
}

