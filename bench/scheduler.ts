/**
 * Scheduler benchmark: 10,000 nodes, 100,000 tasks placed from empty, then 10% of the nodes drained
 * and their tasks re-placed. The same workload runs through three plain baselines written here
 * (first-fit in arrival order, first-fit-decreasing, spread by fewest tasks) so the quality figures
 * are compared in the same run. Every result is verified independently: no node overcommitted, no
 * constraint, port or replicas-per-node rule broken, nothing on a drained node.
 *
 *   npm run bench:scheduler [-- --nodes N --tasks N --seed S]
 */

import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parseConstraint, constraintMatches, planRebalance, Scheduler, type Constraint, type PlacedTask, type SchedNode, type ScheduleOptions, type TaskToPlace } from '../src/scheduler/index.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CPU = 1e9;

function arg(name: string, fallback: number): number {
  const k = process.argv.indexOf(`--${name}`);
  return k >= 0 ? Number(process.argv[k + 1]) : fallback;
}

/** mulberry32: a small seeded generator, so every run builds the same workload. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Workload

const ZONES = ['a', 'b', 'c', 'd', 'e'];

export function makeNodes(n: number, rand: () => number): SchedNode[] {
  const nodes: SchedNode[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    let cpus: number, mem: number, gpu = 0;
    if (r < 0.4) [cpus, mem] = [2, 4];
    else if (r < 0.8) [cpus, mem] = [8, 32];
    else if (r < 0.95) [cpus, mem] = [32, 128];
    else [cpus, mem, gpu] = [16, 64, 4];
    const arm = rand() < 0.1;
    nodes.push({
      id: `node-${String(i).padStart(5, '0')}`,
      hostname: `host${i}`,
      role: i < 5 ? 'manager' : 'worker',
      availability: 'active',
      status: 'ready',
      labels: { zone: ZONES[Math.floor(rand() * ZONES.length)]!, disk: rand() < 0.3 ? 'ssd' : 'hdd' },
      engineLabels: { kernel: rand() < 0.5 ? '6.1' : '6.18' },
      platform: { os: 'linux', arch: arm ? 'arm64' : 'amd64' },
      resources: { nanoCPUs: cpus * CPU, memoryBytes: mem * GiB, ...(gpu ? { generic: { gpu } } : {}) },
    });
  }
  return nodes;
}

// Mean about 0.65 CPU and 1.5 GiB: roughly two thirds of the cluster's CPU and 40% of its memory.
const SIZES: [number, number][] = [
  [0.1, 128 * MiB],
  [0.25, 256 * MiB],
  [0.25, 512 * MiB],
  [0.5, 512 * MiB],
  [0.5, 2 * GiB],
  [1, 1 * GiB],
  [1, 4 * GiB],
  [2, 4 * GiB],
  [0.25, 1 * GiB],
];
const CONSTRAINTS = [
  ['node.labels.zone==a'],
  ['node.labels.disk==ssd'],
  ['node.labels.zone!=e', 'node.role==worker'],
  ['node.platform.arch==amd64'],
  ['engine.labels.kernel==6.18'],
];

export function makeTasks(count: number, rand: () => number): TaskToPlace[] {
  const tasks: TaskToPlace[] = [];
  let s = 0;
  while (tasks.length < count) {
    const service = `svc-${s++}`;
    const replicas = Math.min(count - tasks.length, 1 + Math.floor(rand() * 99));
    const [cpus, mem] = SIZES[Math.floor(rand() * SIZES.length)]!;
    const constrained = rand() < 0.2;
    const spread = rand() < 0.15;
    const gpu = rand() < 0.01;
    const port = rand() < 0.01 ? 8000 + s : 0;
    const base: Omit<TaskToPlace, 'id'> = {
      serviceId: service,
      reservations: { nanoCPUs: cpus * CPU, memoryBytes: mem, ...(gpu ? { generic: { gpu: 1 } } : {}) },
      ...(constrained ? { constraints: CONSTRAINTS[Math.floor(rand() * CONSTRAINTS.length)]! } : {}),
      ...(spread ? { preferences: [{ spread: 'node.labels.zone' }] } : {}),
      ...(port ? { hostPorts: [{ protocol: 'tcp' as const, port }] } : {}),
      ...(rand() < 0.05 ? { maxReplicasPerNode: 2 } : {}),
      ...(rand() < 0.1 ? { platforms: [{ os: 'linux', arch: 'amd64' }] } : {}),
    };
    for (let r = 0; r < replicas; r++) tasks.push({ ...base, id: `${service}.${r}` });
  }
  return tasks;
}

// ---------------------------------------------------------------------------------------------
// Independent state and verification (shared by the baselines)

class Ledger {
  readonly cpu: Float64Array;
  readonly mem: Float64Array;
  readonly gpu: Float64Array;
  readonly tasks: Int32Array;
  readonly ports: Set<string>[];
  readonly perService: Map<string, number>[];
  private readonly constraintCache = new Map<string, Constraint>();
  constructor(readonly nodes: SchedNode[]) {
    const n = nodes.length;
    this.cpu = new Float64Array(n);
    this.mem = new Float64Array(n);
    this.gpu = new Float64Array(n);
    this.tasks = new Int32Array(n);
    this.ports = Array.from({ length: n }, () => new Set());
    this.perService = Array.from({ length: n }, () => new Map());
  }
  constraint(text: string): Constraint {
    let c = this.constraintCache.get(text);
    if (!c) this.constraintCache.set(text, (c = parseConstraint(text)));
    return c;
  }
  staticOk(i: number, t: TaskToPlace): boolean {
    const node = this.nodes[i]!;
    if (node.availability !== 'active' || node.status !== 'ready') return false;
    if (t.platforms && !t.platforms.some((p) => p.os === node.platform?.os && p.arch === node.platform?.arch)) return false;
    for (const c of t.constraints ?? []) if (!constraintMatches(node, this.constraint(c))) return false;
    return true;
  }
  fits(i: number, t: TaskToPlace): boolean {
    const node = this.nodes[i]!;
    const r = t.reservations!;
    if (this.cpu[i]! + r.nanoCPUs > node.resources.nanoCPUs) return false;
    if (this.mem[i]! + r.memoryBytes > node.resources.memoryBytes) return false;
    if ((r.generic?.gpu ?? 0) + this.gpu[i]! > (node.resources.generic?.gpu ?? 0)) return false;
    for (const p of t.hostPorts ?? []) if (this.ports[i]!.has(`${p.protocol}/${p.port}`)) return false;
    if (t.maxReplicasPerNode && (this.perService[i]!.get(t.serviceId) ?? 0) >= t.maxReplicasPerNode) return false;
    return this.staticOk(i, t);
  }
  add(i: number, t: TaskToPlace, sign = 1): void {
    const r = t.reservations!;
    this.cpu[i] = this.cpu[i]! + sign * r.nanoCPUs;
    this.mem[i] = this.mem[i]! + sign * r.memoryBytes;
    this.gpu[i] = this.gpu[i]! + sign * (r.generic?.gpu ?? 0);
    this.tasks[i] = this.tasks[i]! + sign;
    for (const p of t.hostPorts ?? []) {
      if (sign > 0) this.ports[i]!.add(`${p.protocol}/${p.port}`);
      else this.ports[i]!.delete(`${p.protocol}/${p.port}`);
    }
    const m = this.perService[i]!;
    m.set(t.serviceId, (m.get(t.serviceId) ?? 0) + sign);
  }
}

interface Quality {
  placed: number;
  unplaced: number;
  nodesUsed: number;
  meanUtilization: number;
  worstUtilization: number;
  /** Reserved / capacity summed over the used nodes (CPU and memory averaged): big nodes weigh more. */
  capacityUtilization: number;
  violations: number;
}

/** Replays an assignment on a fresh ledger, counting every broken rule, and measures packing. */
function verify(nodes: SchedNode[], tasks: TaskToPlace[], nodeOf: Map<string, number>): Quality {
  const ledger = new Ledger(nodes);
  let violations = 0;
  for (const t of tasks) {
    const i = nodeOf.get(t.id);
    if (i === undefined) continue;
    if (!ledger.fits(i, t)) violations++;
    ledger.add(i, t);
  }
  let used = 0;
  let sum = 0;
  let worst = 1;
  let cpuUsed = 0, cpuCap = 0, memUsed = 0, memCap = 0;
  for (let i = 0; i < nodes.length; i++) {
    if (ledger.tasks[i] === 0) continue;
    used++;
    cpuUsed += ledger.cpu[i]!;
    memUsed += ledger.mem[i]!;
    cpuCap += nodes[i]!.resources.nanoCPUs;
    memCap += nodes[i]!.resources.memoryBytes;
    const u = (ledger.cpu[i]! / nodes[i]!.resources.nanoCPUs + ledger.mem[i]! / nodes[i]!.resources.memoryBytes) / 2;
    sum += u;
    worst = Math.min(worst, u);
  }
  return {
    placed: nodeOf.size,
    unplaced: tasks.length - nodeOf.size,
    nodesUsed: used,
    meanUtilization: used ? round(sum / used) : 0,
    worstUtilization: used ? round(worst) : 0,
    capacityUtilization: used ? round((cpuUsed / cpuCap + memUsed / memCap) / 2) : 0,
    violations,
  };
}

function round(x: number, d = 3): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}

// ---------------------------------------------------------------------------------------------
// Baselines: plain, obvious algorithms over the same filters.

type Baseline = (ledger: Ledger, tasks: TaskToPlace[], nodeOf: Map<string, number>) => void;

/** First node (in listing order) that fits, tasks in the order given. */
const firstFit: Baseline = (ledger, tasks, nodeOf) => {
  const n = ledger.nodes.length;
  for (const t of tasks) {
    for (let i = 0; i < n; i++) {
      if (ledger.fits(i, t)) {
        ledger.add(i, t);
        nodeOf.set(t.id, i);
        break;
      }
    }
  }
};

function taskSize(t: TaskToPlace): number {
  return t.reservations!.nanoCPUs / (32 * CPU) + t.reservations!.memoryBytes / (128 * GiB);
}

/** First-fit over the tasks sorted biggest first. */
const firstFitDecreasing: Baseline = (ledger, tasks, nodeOf) => {
  const sorted = [...tasks].sort((a, b) => taskSize(b) - taskSize(a));
  firstFit(ledger, sorted, nodeOf);
};

/** The node with the fewest tasks that fits (nodes bucketed by task count, lowest bucket first). */
const spread: Baseline = (ledger, tasks, nodeOf) => {
  const n = ledger.nodes.length;
  const buckets: Set<number>[] = [];
  const bucket = (c: number): Set<number> => (buckets[c] ??= new Set());
  for (let i = 0; i < n; i++) bucket(ledger.tasks[i]!).add(i);
  for (const t of tasks) {
    let chosen = -1;
    for (let c = 0; c < buckets.length && chosen < 0; c++) {
      for (const i of buckets[c] ?? []) {
        if (ledger.fits(i, t)) {
          chosen = i;
          break;
        }
      }
    }
    if (chosen < 0) continue;
    bucket(ledger.tasks[chosen]!).delete(chosen);
    ledger.add(chosen, t);
    bucket(ledger.tasks[chosen]!).add(chosen);
    nodeOf.set(t.id, chosen);
  }
};

/** Place from empty, drain, re-place the drained nodes' tasks: the same two phases as the scheduler. */
function runBaseline(fn: Baseline, nodes: SchedNode[], drained: SchedNode[], tasks: TaskToPlace[]): { ms: number; quality: Quality } {
  const t0 = performance.now();
  const ledger = new Ledger(nodes);
  const nodeOf = new Map<string, number>();
  fn(ledger, tasks, nodeOf);
  const after = new Ledger(drained);
  for (const t of tasks) {
    const i = nodeOf.get(t.id);
    if (i === undefined) continue;
    if (drained[i]!.availability === 'drain') nodeOf.delete(t.id);
    else after.add(i, t);
  }
  const again = tasks.filter((t) => !nodeOf.has(t.id));
  fn(after, again, nodeOf);
  const ms = performance.now() - t0;
  return { ms, quality: verify(drained, tasks, nodeOf) };
}

// ---------------------------------------------------------------------------------------------
// Rebalance planning on the final placement, with every move replayed and checked on a ledger.

function planRebalances(drained: SchedNode[], tasks: TaskToPlace[], nodeOf: Map<string, number>) {
  const ledger = new Ledger(drained);
  for (const t of tasks) {
    const i = nodeOf.get(t.id);
    if (i !== undefined) ledger.add(i, t);
  }
  // As the manager would describe them: maintenance over, reservations include the running tasks.
  const current: SchedNode[] = drained.map((n, i) => ({
    ...n,
    availability: 'active',
    reserved: { nanoCPUs: ledger.cpu[i]!, memoryBytes: ledger.mem[i]!, generic: { gpu: ledger.gpu[i]! } },
    hostPortsInUse: [...ledger.ports[i]!].map((p) => ({ protocol: 'tcp' as const, port: Number(p.split('/')[1]) })),
    serviceTasks: Object.fromEntries(ledger.perService[i]!),
  }));
  const placed: PlacedTask[] = [];
  for (const t of tasks) {
    const i = nodeOf.get(t.id);
    if (i !== undefined) placed.push({ ...t, nodeId: current[i]!.id });
  }
  const byId = new Map(tasks.map((t) => [t.id, t] as const));
  const index = new Map(current.map((n, i) => [n.id, i] as const));
  const budget = 1000;
  const run = (goal: 'spread' | 'consolidate') => {
    const t0 = performance.now();
    const plan = planRebalance({ nodes: current }, placed, { goal, maxMoves: budget });
    const ms = Math.round(performance.now() - t0);
    const check = new Ledger(current);
    for (const t of tasks) {
      const i = nodeOf.get(t.id);
      if (i !== undefined) check.add(i, t);
    }
    let violations = 0;
    for (const m of plan.moves) {
      const t = byId.get(m.taskId)!;
      check.add(index.get(m.from)!, t, -1);
      if (!check.fits(index.get(m.to)!, t)) violations++;
      check.add(index.get(m.to)!, t);
    }
    return { budget, moves: plan.moves.length, freedNodes: plan.freedNodes.length, ms, violations };
  };
  return { spread: run('spread'), consolidate: run('consolidate') };
}

/** A full GC between phases, so one phase's garbage is not collected on the next one's clock. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

/** JS heap in use plus typed-array backing stores (the node indexes live there, outside the heap). */
function heapMiB(): number {
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / MiB;
}

/** Time the first `place()` of a fresh process: spawns this script with `--cold`. */
function measureCold(nodeCount: number, taskCount: number, seed: number): { placeMs: number; cpuMs: number } {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--cold', '--nodes', String(nodeCount), '--tasks', String(taskCount), '--seed', String(seed)], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { placeMs: number; cpuMs: number };
}

function coldRun(): void {
  const rand = rng(arg('seed', 42));
  const nodes = makeNodes(arg('nodes', 10_000), rand);
  const tasks = makeTasks(arg('tasks', 100_000), rand);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  new Scheduler({ nodes }).place(tasks);
  const placeMs = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  console.log(JSON.stringify({ placeMs: round(placeMs, 1), cpuMs: Math.round((c1.user + c1.system) / 1000) }));
}

function main(): void {
  if (process.argv.includes('--cold')) return coldRun();
  const nodeCount = arg('nodes', 10_000);
  const taskCount = arg('tasks', 100_000);
  const seed = arg('seed', 42);
  const rand = rng(seed);
  const nodes = makeNodes(nodeCount, rand);
  const tasks = makeTasks(taskCount, rand);
  const drainCount = Math.floor(nodeCount / 10);
  const drainedIdx = new Set<number>();
  while (drainedIdx.size < drainCount) drainedIdx.add(Math.floor(rand() * nodeCount));
  const drainedNodes = nodes.map((n, i) => (drainedIdx.has(i) ? { ...n, availability: 'drain' as const } : n));
  const constrained = tasks.filter((t) => t.constraints).length;
  const withPreferences = tasks.filter((t) => t.preferences).length;

  // --- cold: the first call in a fresh process (JIT not warmed up), measured in a child process ----
  const cold = measureCold(nodeCount, taskCount, seed);

  // --- warm-up on a different, smaller workload, so the timed run measures the algorithm ----------
  {
    const warmRand = rng(seed + 1);
    const warmNodes = makeNodes(Math.max(1, Math.floor(nodeCount / 10)), warmRand);
    const warmTasks = makeTasks(Math.floor(taskCount / 10), warmRand);
    for (const strategy of ['binpack', 'spread', 'binpack', 'spread'] as const) {
      const w = new Scheduler({ nodes: warmNodes }, { strategy });
      const r = w.place(warmTasks);
      w.release(r.assignments.slice(0, 1000).map((a) => a.taskId));
      w.place(warmTasks.slice(0, 1000));
    }
  }

  // --- tsswarm scheduler -----------------------------------------------------------------------
  collectGarbage();
  const heapBefore = heapMiB();
  let peakHeap = heapBefore;
  let peakCommitted = v8.getHeapStatistics().total_heap_size / MiB;
  const sample = (): void => {
    peakHeap = Math.max(peakHeap, heapMiB());
    peakCommitted = Math.max(peakCommitted, v8.getHeapStatistics().total_heap_size / MiB);
  };

  // CPU time next to wall time: on a shared machine the wall clock also counts other processes' turns.
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const scheduler = new Scheduler({ nodes });
  const t1 = performance.now();
  const first = scheduler.place(tasks);
  const t2 = performance.now();
  const cpu1 = process.cpuUsage(cpu0);
  const placeCpuMs = (cpu1.user + cpu1.system) / 1000;
  sample();
  const nodeOf = new Map<string, number>();
  const index = new Map(nodes.map((n, i) => [n.id, i] as const));
  for (const a of first.assignments) nodeOf.set(a.taskId, index.get(a.nodeId)!);
  const phase1 = verify(nodes, tasks, nodeOf);

  const cpu3 = process.cpuUsage();
  const t3 = performance.now();
  scheduler.updateNodes(drainedNodes.filter((n) => n.availability === 'drain'));
  // The drained nodes' tasks, plus any left unplaced the first time (the baselines retry them too).
  const moved = tasks.filter((t) => drainedIdx.has(nodeOf.get(t.id) ?? -1) || !nodeOf.has(t.id));
  scheduler.release(moved.map((t) => t.id));
  const t4 = performance.now();
  const second = scheduler.place(moved);
  const t5 = performance.now();
  const cpu4 = process.cpuUsage(cpu3);
  const replaceCpuMs = (cpu4.user + cpu4.system) / 1000;
  sample();
  // The kernel's high-water mark of the whole process so far (workload, scheduler, everything):
  // an upper bound on the true peak, which sampling between phases could miss.
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  for (const t of moved) nodeOf.delete(t.id);
  for (const a of second.assignments) nodeOf.set(a.taskId, index.get(a.nodeId)!);
  const final = verify(drainedNodes, tasks, nodeOf);
  let onDrained = 0;
  for (const i of nodeOf.values()) if (drainedIdx.has(i)) onDrained++;

  const placeMs = t2 - t0;
  const placementsPerSec = first.assignments.length / (placeMs / 1000);
  const replaceMs = t5 - t3;
  const placementsPerCpuSec = first.assignments.length / (placeCpuMs / 1000);

  // --- rebalance: the drained nodes come back; plan moves onto them (spread) and plan freeing nodes
  const rebalance = planRebalances(drainedNodes, tasks, nodeOf);

  // --- baselines -------------------------------------------------------------------------------
  // `--quick` skips the baselines (for profiling the scheduler alone).
  const skip = process.argv.includes('--quick');
  const none = { ms: 0, quality: { placed: 0, unplaced: 0, nodesUsed: 0, meanUtilization: 0, worstUtilization: 0, capacityUtilization: 0, violations: 0 } };
  const ff = skip ? none : runBaseline(firstFit, nodes, drainedNodes, tasks);
  const ffd = skip ? none : runBaseline(firstFitDecreasing, nodes, drainedNodes, tasks);
  const sp = skip ? none : runBaseline(spread, nodes, drainedNodes, tasks);

  // tsswarm's other modes on the same two phases, for their cost and quality next to the baselines.
  const runOurs = (opts: ScheduleOptions) => {
    const ts0 = performance.now();
    const s = new Scheduler({ nodes }, opts);
    const sFirst = s.place(tasks);
    const ts1 = performance.now();
    const sNodeOf = new Map<string, number>();
    for (const a of sFirst.assignments) sNodeOf.set(a.taskId, index.get(a.nodeId)!);
    s.updateNodes(drainedNodes.filter((n) => n.availability === 'drain'));
    const sMoved = tasks.filter((t) => drainedIdx.has(sNodeOf.get(t.id) ?? -1) || !sNodeOf.has(t.id));
    s.release(sMoved.map((t) => t.id));
    const sSecond = s.place(sMoved);
    const ts2 = performance.now();
    for (const t of sMoved) sNodeOf.delete(t.id);
    for (const a of sSecond.assignments) sNodeOf.set(a.taskId, index.get(a.nodeId)!);
    return { ms: ts2 - ts0, placeMs: ts1 - ts0, quality: verify(drainedNodes, tasks, sNodeOf) };
  };
  const spreadOurs = runOurs({ strategy: 'spread' });
  const fairOurs = runOurs({ spreadReplicas: true });

  // --- report ----------------------------------------------------------------------------------
  const row = (name: string, ms: number, q: Quality): string =>
    `${name.padEnd(24)} ${ms.toFixed(0).padStart(8)} ${String(q.placed).padStart(8)} ${String(q.unplaced).padStart(8)} ${String(q.nodesUsed).padStart(6)} ${q.meanUtilization.toFixed(3).padStart(6)} ${q.worstUtilization.toFixed(3).padStart(6)} ${q.capacityUtilization.toFixed(3).padStart(6)} ${String(q.violations).padStart(5)}`;
  console.log(`scheduler benchmark: ${nodeCount} nodes, ${taskCount} tasks (${constrained} constrained, ${withPreferences} with spread preferences), seed ${seed}`);
  console.log(
    `tsswarm binpack: index build ${(t1 - t0).toFixed(1)} ms, placement ${(t2 - t1).toFixed(1)} ms, ${Math.round(placementsPerSec)} placements/s (wall); CPU ${placeCpuMs.toFixed(0)} ms, ${Math.round(placementsPerCpuSec)} placements per CPU-second`,
  );
  console.log(`drain ${drainCount} nodes: update+release ${(t4 - t3).toFixed(1)} ms, re-place ${moved.length} tasks ${(t5 - t4).toFixed(1)} ms (CPU ${replaceCpuMs.toFixed(0)} ms)`);
  console.log(`cold (first call in a fresh process, JIT not warmed up): ${cold.placeMs.toFixed(0)} ms wall, ${cold.cpuMs} ms CPU`);
  console.log(`load average while running: ${os.loadavg()[0]!.toFixed(2)} on ${os.availableParallelism()} CPUs`);
  console.log(
    `peak heap used ${peakHeap.toFixed(0)} MiB incl. typed arrays (sampled after each phase; committed ${peakCommitted.toFixed(0)} MiB, ${heapBefore.toFixed(0)} MiB before scheduling); process peak RSS ${peakRssMiB.toFixed(0)} MiB`,
  );
  console.log('');
  console.log(`${'after drain + re-place'.padEnd(24)} ${'ms'.padStart(8)} ${'placed'.padStart(8)} ${'unplaced'.padStart(8)} ${'nodes'.padStart(6)} ${'mean'.padStart(6)} ${'worst'.padStart(6)} ${'cap'.padStart(6)} ${'viol'.padStart(5)}`);
  console.log('(nodes = nodes with at least one task; mean/worst = per-node utilization; cap = reserved/capacity of the used nodes; viol = overcommits and broken rules)');
  console.log(row('tsswarm binpack', placeMs + replaceMs, final));
  console.log(row('first-fit', ff.ms, ff.quality));
  console.log(row('first-fit-decreasing', ffd.ms, ffd.quality));
  console.log(row('spread (fewest tasks)', sp.ms, sp.quality));
  console.log(row('tsswarm spread', spreadOurs.ms, spreadOurs.quality));
  console.log(row('tsswarm spreadReplicas', fairOurs.ms, fairOurs.quality));
  console.log(row('tsswarm, before drain', placeMs, phase1));
  for (const goal of ['spread', 'consolidate'] as const) {
    const r = rebalance[goal];
    console.log(`rebalance ${goal} (nodes back from drain, budget ${r.budget}): ${r.moves} moves, ${r.freedNodes} nodes freed, planned in ${r.ms} ms, ${r.violations} violations`);
  }
  const reasons = new Map<string, number>();
  for (const u of second.unplaced) reasons.set(u.reason, (reasons.get(u.reason) ?? 0) + 1);
  for (const [reason, n] of reasons) console.log(`unplaced after drain: ${n} x ${reason}`);
  console.log('');
  const overcommits = phase1.violations + final.violations + spreadOurs.quality.violations + fairOurs.quality.violations;
  const result = {
    nodes: nodeCount,
    tasks: taskCount,
    constrainedTasks: constrained,
    tasksWithPreferences: withPreferences,
    seed,
    indexBuildMs: round(t1 - t0, 1),
    placeMs: round(placeMs, 1),
    placementsPerSec: Math.round(placementsPerSec),
    coldPlaceMs: cold.placeMs,
    coldPlaceCpuMs: cold.cpuMs,
    placeCpuMs: Math.round(placeCpuMs),
    placementsPerCpuSec: Math.round(placementsPerCpuSec),
    loadAverage: round(os.loadavg()[0]!, 2),
    drainedNodes: drainCount,
    replacedTasks: moved.length,
    replaceMs: round(replaceMs, 1),
    replaceCpuMs: Math.round(replaceCpuMs),
    peakHeapMiB: Math.round(peakHeap),
    peakRssMiB: Math.round(peakRssMiB),
    peakCommittedHeapMiB: Math.round(peakCommitted),
    tsswarm: { beforeDrain: phase1, final, tasksOnDrainedNodes: onDrained },
    firstFit: { ms: Math.round(ff.ms), ...ff.quality },
    firstFitDecreasing: { ms: Math.round(ffd.ms), ...ffd.quality },
    spread: { ms: Math.round(sp.ms), ...sp.quality },
    tsswarmSpread: { ms: Math.round(spreadOurs.ms), placeMs: Math.round(spreadOurs.placeMs), ...spreadOurs.quality },
    tsswarmSpreadReplicas: { ms: Math.round(fairOurs.ms), placeMs: Math.round(fairOurs.placeMs), ...fairOurs.quality },
    nodesUsedRatioVsFfd: round(final.nodesUsed / ffd.quality.nodesUsed),
    nodesUsedRatioVsFirstFit: round(final.nodesUsed / ff.quality.nodesUsed),
    speedupVsFirstFit: round(ff.ms / (placeMs + replaceMs), 1),
    rebalance,
    overcommitsAndViolations: overcommits + rebalance.spread.violations + rebalance.consolidate.violations,
    targets: {
      under1s: placeMs < 1000,
      under1sCold: cold.placeMs < 1000,
      heapUnder500MiB: peakHeap < 500 && peakCommitted < 500,
      nodesNoMoreThanFfd: final.nodesUsed <= ffd.quality.nodesUsed,
      zeroOvercommit: overcommits === 0 && onDrained === 0,
    },
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

// Run when executed, not when imported (a profiling harness may import the workload builders).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
