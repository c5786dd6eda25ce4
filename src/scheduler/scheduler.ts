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

import { fieldValue, type ConstraintField } from './constraint.js';
import { explainRejections, fitsBeyondCpuMemory, staticallyEligible } from './filters.js';
import { NodeTable } from './node-table.js';
import { OrderedIndex } from './ordered-index.js';
import { PlacedTasks } from './placed-tasks.js';
import { RequirementCompiler, type Requirement } from './requirements.js';
import { binpackKey, spreadKey } from './strategy.js';
import type { Assignment, ClusterState, PlacedTask, PlaceOptions, SchedNode, ScheduleOptions, ScheduleResult, Strategy, TaskToPlace, Unplaced } from './types.js';

/** Nodes that accept a static key's tasks, and their binpack index. */
interface View {
  /** Any requirement with this static key: the view's membership test. */
  req: Requirement;
  members: number[];
  mask: Uint8Array;
  index: OrderedIndex;
  /** Spread strategy: the same nodes ranked by fewest tasks overall; built on first use. */
  spreadIndex?: OrderedIndex;
  preferenceGroups: Map<string, PreferenceGroups>;
}

/** A view split by the values of a task's spread preferences, one leaf per distinct value tuple. */
interface PreferenceGroups {
  leaves: Leaf[];
  leafOf: Int32Array;
  byPath: Map<string, Leaf>;
  fields: readonly ConstraintField[];
}

interface Leaf {
  position: number;
  path: string;
  /** For each preference level, the key of this leaf's group at that level ("zone=a", "zone=a|rack=1"). */
  levelKeys: string[];
  members: number[];
  index: OrderedIndex;
  spreadIndex?: OrderedIndex;
}


export class Scheduler {
  private table: NodeTable;
  private readonly strategy: Strategy;
  private readonly cpuWeight: number;
  private readonly memoryWeight: number;
  private readonly spareGenericNodes: boolean;
  private readonly compiler = new RequirementCompiler();
  private views = new Map<string, View>();
  /**
   * Nodes whose free resources changed, in order. A node belongs to many indexes (one per constraint
   * set and preference group it qualifies for); re-keying all of them on every placement would cost
   * that many O(log n) updates. Instead an index catches up on the log when a batch is about to use
   * it, touching each changed node once however many tasks it received meanwhile.
   */
  private changes: number[] = [];
  private syncStamp: Uint32Array = new Uint32Array(0);
  private syncRound = 0;
  /** Position in `changes` where the current `place()` call began. */
  private callStart = 0;
  private allIndexes: OrderedIndex[] = [];
  /** Indexes whose ranking must follow every change (spread's task counts), never frozen for a call. */
  private exactIndexes = new Set<OrderedIndex>();
  private scratch: OrderedIndex[] = [];
  private explain = true;
  private readonly placed = new PlacedTasks();

  private baseNodes: SchedNode[];

  constructor(cluster: ClusterState, opts: ScheduleOptions = {}) {
    this.strategy = opts.strategy ?? 'binpack';
    this.cpuWeight = opts.cpuWeight ?? 1;
    this.memoryWeight = opts.memoryWeight ?? 1;
    this.spareGenericNodes = opts.spareGenericNodes ?? false;
    if (!(this.cpuWeight >= 0 && this.memoryWeight >= 0 && this.cpuWeight + this.memoryWeight > 0)) {
      throw new Error('cpuWeight and memoryWeight must be non-negative and not both zero');
    }
    this.baseNodes = [...cluster.nodes];
    this.table = new NodeTable(this.baseNodes);
    this.resetIndexes();
  }

  /** Place tasks; those that fit are accounted on their node until `release`d. */
  place(tasks: readonly TaskToPlace[], opts: PlaceOptions = {}): ScheduleResult {
    this.startCall();
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
      this.changes.push(i);
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
      this.changes.push(i);
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
    for (const view of this.views.values()) {
      const eligible = staticallyEligible(this.table, i, view.req);
      if (eligible === (view.mask[i] === 1)) continue;
      if (eligible) {
        view.mask[i] = 1;
        view.members.push(i);
        view.index.insert(i);
        view.spreadIndex?.insert(i);
      } else {
        view.mask[i] = 0;
        view.index.remove(i);
        view.spreadIndex?.remove(i);
      }
      for (const [key, pg] of view.preferenceGroups) {
        if (!eligible) {
          const leaf = pg.leaves[pg.leafOf[i]!];
          pg.leafOf[i] = -1;
          leaf?.index.remove(i);
          leaf?.spreadIndex?.remove(i);
          continue;
        }
        const path = pathOf(this.table.nodes[i]!, pg);
        const leaf = pg.byPath.get(path);
        if (!leaf) {
          // A value no group has yet: let the groups be rebuilt when next needed.
          view.preferenceGroups.delete(key);
          continue;
        }
        pg.leafOf[i] = leaf.position;
        leaf.members.push(i);
        leaf.index.insert(i);
        leaf.spreadIndex?.insert(i);
      }
    }
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
    this.views = new Map();
    this.changes = [];
    this.syncStamp = new Uint32Array(this.table.size);
    this.allIndexes = [];
    this.exactIndexes = new Set();
    this.scratch = [];
  }

  /**
   * Bring an index up to date. Binpack's order is frozen for the length of a `place()` call (nodes
   * are ranked by fullness at the start of the call, then filled first-fit in that order, which is
   * first-fit-decreasing with the fullest nodes first): changes logged before the call re-key their
   * node, changes made during the call only refresh the free-resource maxima on its path.
   */
  private sync(index: OrderedIndex): void {
    const now = this.changes.length;
    const rekeyTo = this.exactIndexes.has(index) ? now : this.callStart;
    if (index.keyedTo < rekeyTo) {
      const round = ++this.syncRound;
      for (let k = index.keyedTo; k < rekeyTo; k++) {
        const i = this.changes[k]!;
        if (this.syncStamp[i] === round) continue;
        this.syncStamp[i] = round;
        index.update(i);
      }
      index.keyedTo = rekeyTo;
      if (index.freshTo < rekeyTo) index.freshTo = rekeyTo;
    }
    if (index.freshTo < now) {
      const round = ++this.syncRound;
      for (let k = Math.max(index.freshTo, rekeyTo); k < now; k++) {
        const i = this.changes[k]!;
        if (this.syncStamp[i] === round) continue;
        this.syncStamp[i] = round;
        index.refresh(i);
      }
      index.freshTo = now;
    }
  }

  /** Called at the start of `place()`: keep the log bounded by syncing everyone once it is long. */
  private startCall(): void {
    if (this.changes.length >= 4 * this.table.size + 100_000) {
      this.callStart = this.changes.length;
      for (const index of this.allIndexes) this.sync(index);
      this.changes = [];
      for (const index of this.allIndexes) index.keyedTo = index.freshTo = 0;
    }
    this.callStart = this.changes.length;
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
    index.keyedTo = index.freshTo = this.changes.length;
    this.allIndexes.push(index);
    return index;
  }

  private view(req: Requirement): View {
    let v = this.views.get(req.staticKey);
    if (v) return v;
    const members: number[] = [];
    const mask = new Uint8Array(this.table.size);
    for (let i = 0; i < this.table.size; i++) {
      if (!staticallyEligible(this.table, i, req)) continue;
      members.push(i);
      mask[i] = 1;
    }
    const index = this.newBinpackIndex(req);
    index.build(members);
    v = { req, members, mask, index, preferenceGroups: new Map() };
    this.views.set(req.staticKey, v);
    return v;
  }

  private preferenceGroups(view: View, req: Requirement): PreferenceGroups {
    let pg = view.preferenceGroups.get(req.preferenceKey);
    if (pg) return pg;
    const byPath = new Map<string, { values: string[]; members: number[] }>();
    const leafOf = new Int32Array(this.table.size).fill(-1);
    for (const i of this.live(view.members, (j) => view.mask[j] === 1)) {
      const node = this.table.nodes[i]!;
      const values = req.preferences.map((f) => fieldValue(node, f));
      const path = values.join('\u0000');
      let entry = byPath.get(path);
      if (!entry) byPath.set(path, (entry = { values, members: [] }));
      entry.members.push(i);
    }
    // Leaves in sorted order of their value paths, so ties between groups break the same way every time.
    const paths = [...byPath.keys()].sort();
    const leaves: Leaf[] = paths.map((path, position) => {
      const { values, members } = byPath.get(path)!;
      const levelKeys = values.map((_, l) => values.slice(0, l + 1).join('\u0000'));
      for (const i of members) leafOf[i] = position;
      const index = this.newBinpackIndex(req);
      index.build(members);
      return { position, path, levelKeys, members, index };
    });
    pg = { leaves, leafOf, byPath: new Map(leaves.map((l) => [l.path, l] as const)), fields: req.preferences };
    view.preferenceGroups.set(req.preferenceKey, pg);
    return pg;
  }

  /**
   * Member lists only grow (removals just clear a mask, to keep node events cheap); this drops the
   * stale and duplicate entries when a list is about to be used, and stores the clean list back.
   */
  private live(list: number[], isMember: (i: number) => boolean): number[] {
    const round = ++this.syncRound;
    let w = 0;
    for (let r = 0; r < list.length; r++) {
      const i = list[r]!;
      if (!isMember(i) || this.syncStamp[i] === round) continue;
      this.syncStamp[i] = round;
      list[w++] = i;
    }
    list.length = w;
    return list;
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
    const view = this.view(req);
    const groups = req.preferences.length > 0 ? this.preferenceGroups(view, req) : undefined;
    // The indexes this batch searches: the persistent binpack ones, or fresh spread-ordered ones.
    let indexes: OrderedIndex[];
    const serviceCounts = this.table.countsFor(req.serviceId);
    // Spread: each candidate set has a persistent index of its nodes by fewest tasks overall, and a
    // scratch index for this batch holding the nodes that already run the service, ranked by
    // (tasks of the service, tasks overall). Any node without the service beats every node with it,
    // so a pick asks the first and falls back to the second. Only the service's own nodes move
    // between the two, so a batch costs O((k + existing) log n), not a re-sort of all nodes.
    const spread = this.strategy === 'spread';
    const owners: { members: number[]; spreadIndex?: OrderedIndex }[] = groups ? groups.leaves : [view];
    const scratch: OrderedIndex[] = [];
    if (spread) {
      const isMember = groups ? (l: number) => (i: number) => groups.leafOf[i] === l : () => (i: number) => view.mask[i] === 1;
      indexes = owners.map((o, l) => this.spreadIndexOf(o, isMember(l)));
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
      indexes = groups ? groups.leaves.map((l) => l.index) : [view.index];
      for (const index of indexes) this.sync(index);
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
        node = this.pick(indexes[0]!, req, excluded);
        if (node < 0 && spread) node = this.pick(scratch[0]!, req, excluded);
      } else {
        if (leafOrder.length > 1) leafOrder.sort(compareLeaves);
        for (const l of leafOrder) {
          node = this.pick(indexes[l]!, req, excluded);
          if (node < 0 && spread) node = this.pick(scratch[l]!, req, excluded);
          if (node >= 0) {
            chosenSet = l;
            for (const k of groups.leaves[l]!.levelKeys) levelCounts.set(k, (levelCounts.get(k) ?? 0) + 1);
            break;
          }
        }
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
      }
      this.changes.push(node);
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
      for (const index of indexes) index.keyedTo = index.freshTo = this.changes.length;
    } else {
      for (const index of indexes) index.freshTo = this.changes.length;
    }
  }

  /** A candidate set's persistent spread index (fewest tasks overall first), synced exactly. */
  private spreadIndexOf(owner: { members: number[]; spreadIndex?: OrderedIndex }, isMember: (i: number) => boolean): OrderedIndex {
    let index = owner.spreadIndex;
    if (!index) {
      const table = this.table;
      index = new OrderedIndex(table.size, table.freeCpu, table.freeMemory, (i) => -table.taskCount[i]!);
      index.build(this.live(owner.members, isMember));
      index.keyedTo = index.freshTo = this.changes.length;
      owner.spreadIndex = index;
      this.exactIndexes.add(index);
      this.allIndexes.push(index);
    }
    this.sync(index);
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

  /** The most preferred node of `index` that passes every dynamic check, or -1. */
  private pick(index: OrderedIndex, req: Requirement, excluded: [OrderedIndex, number, number][]): number {
    for (;;) {
      const i = index.best(req.cpu, req.memory);
      if (i < 0) return -1;
      if (fitsBeyondCpuMemory(this.table, i, req)) return i;
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

function pathOf(node: SchedNode, pg: PreferenceGroups): string {
  return pg.fields.map((f) => fieldValue(node, f)).join('\u0000');
}
