/**
 * Properties over random small clusters, checked by an independent model written here (it does not
 * use the scheduler's filters): capacity, constraints, ports, replicas per node, availability,
 * completeness against brute force, determinism, first-fit-decreasing as a quality floor, and the
 * rebalance planner's moves.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRebalance, schedule, Scheduler, type PlacedTask, type SchedNode, type ScheduleResult, type TaskToPlace } from './index.js';

const G = 1e9;
const RUNS = Number(process.env.SCHED_PROPERTY_RUNS ?? 300);

// ------------------------------------------------------------------------------------------------
// Arbitraries

const CONSTRAINTS = ['node.labels.zone==a', 'node.labels.zone!=b', 'node.role==worker', 'node.platform.arch==arm64', 'engine.labels.fast==yes', 'node.hostname!=n0', 'node.hostname==N1', 'node.id==n2'];

const nodeArb = (k: number, resourcesOnly: boolean): fc.Arbitrary<SchedNode> =>
  fc
    .record({
      role: fc.constantFrom('worker' as const, 'worker' as const, 'manager' as const),
      availability: fc.constantFrom('active' as const, 'active' as const, 'active' as const, 'pause' as const, 'drain' as const),
      status: fc.constantFrom('ready' as const, 'ready' as const, 'ready' as const, 'down' as const),
      zone: fc.constantFrom('a', 'b', 'c', undefined),
      fast: fc.boolean(),
      arch: fc.constantFrom('amd64', 'amd64', 'arm64'),
      cpu: fc.constantFrom(1, 2, 4, 8),
      mem: fc.constantFrom(1, 2, 4, 8),
      gpu: fc.constantFrom(0, 0, 1, 2),
      usedCpu: fc.constantFrom(0, 0, 0.5, 1),
      usedMem: fc.constantFrom(0, 0, 0.5, 1),
      port80: fc.boolean(),
      existing: fc.constantFrom(0, 0, 1, 2),
    })
    .map((r): SchedNode => {
      if (resourcesOnly) {
        return { id: `n${k}`, hostname: `n${k}`, role: 'worker', availability: 'active', status: 'ready', resources: { nanoCPUs: r.cpu * G, memoryBytes: r.mem * G } };
      }
      return {
        id: `n${k}`,
        hostname: `n${k}`,
        role: r.role,
        availability: r.availability,
        status: r.status,
        labels: r.zone ? { zone: r.zone } : {},
        engineLabels: r.fast ? { fast: 'yes' } : {},
        platform: { os: 'linux', arch: r.arch },
        resources: { nanoCPUs: r.cpu * G, memoryBytes: r.mem * G, ...(r.gpu ? { generic: { gpu: r.gpu } } : {}) },
        reserved: { nanoCPUs: Math.min(r.usedCpu, r.cpu) * G, memoryBytes: Math.min(r.usedMem, r.mem) * G },
        hostPortsInUse: r.port80 ? [{ protocol: 'tcp', port: 80 }] : [],
        serviceTasks: r.existing ? { s0: r.existing } : {},
      };
    });

const nodesArb = (resourcesOnly = false, max = 8): fc.Arbitrary<SchedNode[]> =>
  fc.integer({ min: 0, max }).chain((n) => (n === 0 ? fc.constant([]) : fc.tuple(...Array.from({ length: n }, (_, k) => nodeArb(k, resourcesOnly)))));

const serviceArb = (s: number, resourcesOnly: boolean): fc.Arbitrary<TaskToPlace[]> =>
  fc
    .record({
      replicas: fc.integer({ min: 1, max: 6 }),
      cpu: fc.constantFrom(0, 0.25, 0.5, 1, 2, 3),
      mem: fc.constantFrom(0, 0.25, 0.5, 1, 2, 3),
      constraints: fc.subarray(CONSTRAINTS, { maxLength: 2 }),
      spread: fc.boolean(),
      maxReplicas: fc.constantFrom(0, 0, 1, 2),
      port: fc.constantFrom(0, 0, 80, 443),
      amd64Only: fc.boolean(),
      gpu: fc.constantFrom(0, 0, 0, 1),
    })
    .map((r) => {
      const base: Omit<TaskToPlace, 'id'> = resourcesOnly
        ? { serviceId: `s${s}`, reservations: { nanoCPUs: r.cpu * G, memoryBytes: r.mem * G } }
        : {
            serviceId: `s${s}`,
            reservations: { nanoCPUs: r.cpu * G, memoryBytes: r.mem * G, ...(r.gpu ? { generic: { gpu: r.gpu } } : {}) },
            constraints: r.constraints,
            ...(r.spread ? { preferences: [{ spread: 'node.labels.zone' }] } : {}),
            maxReplicasPerNode: r.maxReplicas,
            hostPorts: r.port ? [{ protocol: 'tcp', port: r.port }] : [],
            ...(r.amd64Only ? { platforms: [{ os: 'linux', arch: 'amd64' }] } : {}),
          };
      return Array.from({ length: r.replicas }, (_, k) => ({ ...base, id: `s${s}.${k}` }));
    });

const tasksArb = (resourcesOnly = false): fc.Arbitrary<TaskToPlace[]> =>
  fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, s) => serviceArb(s, resourcesOnly)))).map((l) => l.flat());

const strategyArb = fc.constantFrom('binpack' as const, 'spread' as const);

// ------------------------------------------------------------------------------------------------
// An independent model of the rules

function matches(node: SchedNode, expr: string): boolean {
  const [, key, op, value] = /^(.*?)(==|!=)(.*)$/.exec(expr)!;
  let actual: string;
  if (key === 'node.role') actual = node.role;
  else if (key === 'node.id') actual = node.id;
  else if (key === 'node.hostname') actual = node.hostname;
  else if (key === 'node.platform.arch') actual = node.platform?.arch ?? '';
  else if (key!.startsWith('node.labels.')) actual = node.labels?.[key!.slice(12)] ?? '';
  else if (key!.startsWith('engine.labels.')) actual = node.engineLabels?.[key!.slice(14)] ?? '';
  else throw new Error(`model does not know ${key}`);
  // Docker compares values case-insensitively.
  return op === '==' ? actual.toLowerCase() === value!.toLowerCase() : actual.toLowerCase() !== value!.toLowerCase();
}

class Model {
  cpu: number[];
  mem: number[];
  gpu: number[];
  ports: Set<number>[];
  svc: Map<string, number>[];
  constructor(readonly nodes: readonly SchedNode[]) {
    this.cpu = nodes.map((n) => n.reserved?.nanoCPUs ?? 0);
    this.mem = nodes.map((n) => n.reserved?.memoryBytes ?? 0);
    this.gpu = nodes.map((n) => n.reserved?.generic?.gpu ?? 0);
    this.ports = nodes.map((n) => new Set((n.hostPortsInUse ?? []).map((p) => p.port)));
    this.svc = nodes.map((n) => new Map(Object.entries(n.serviceTasks ?? {})));
  }
  /** Every rule for one more task of `t` on node i; returns the broken rule or null. */
  violation(i: number, t: TaskToPlace): string | null {
    const n = this.nodes[i]!;
    const r = t.reservations ?? { nanoCPUs: 0, memoryBytes: 0 };
    if (n.status !== 'ready' || n.availability !== 'active') return 'unavailable node';
    if (t.platforms?.length && !t.platforms.some((p) => p.arch === n.platform?.arch)) return 'platform';
    for (const c of t.constraints ?? []) if (!matches(n, c)) return `constraint ${c}`;
    if (this.cpu[i]! + r.nanoCPUs > n.resources.nanoCPUs) return 'cpu';
    if (this.mem[i]! + r.memoryBytes > n.resources.memoryBytes) return 'memory';
    if (this.gpu[i]! + (r.generic?.gpu ?? 0) > (n.resources.generic?.gpu ?? 0)) return 'gpu';
    for (const p of t.hostPorts ?? []) if (this.ports[i]!.has(p.port)) return 'port';
    if (t.maxReplicasPerNode && (this.svc[i]!.get(t.serviceId) ?? 0) >= t.maxReplicasPerNode) return 'max replicas';
    return null;
  }
  add(i: number, t: TaskToPlace, sign = 1): void {
    const r = t.reservations ?? { nanoCPUs: 0, memoryBytes: 0 };
    this.cpu[i] = this.cpu[i]! + sign * r.nanoCPUs;
    this.mem[i] = this.mem[i]! + sign * r.memoryBytes;
    this.gpu[i] = this.gpu[i]! + sign * (r.generic?.gpu ?? 0);
    for (const p of t.hostPorts ?? []) (sign > 0 ? this.ports[i]!.add(p.port) : this.ports[i]!.delete(p.port));
    this.svc[i]!.set(t.serviceId, (this.svc[i]!.get(t.serviceId) ?? 0) + sign);
  }
}

/** Replays the result in the model: every assignment must be legal when made, in any order (they are independent). */
function checkResult(nodes: SchedNode[], tasks: TaskToPlace[], result: ScheduleResult): Model {
  const model = new Model(nodes);
  const byId = new Map(tasks.map((t) => [t.id, t] as const));
  const index = new Map(nodes.map((n, i) => [n.id, i] as const));
  expect(result.assignments.length + result.unplaced.length).toBe(tasks.length);
  for (const a of result.assignments) {
    const i = index.get(a.nodeId)!;
    const t = byId.get(a.taskId)!;
    // Check capacity on the final totals below; the per-node rules that do not depend on order here.
    const v = model.violation(i, t);
    if (v !== null && v !== 'cpu' && v !== 'memory' && v !== 'gpu' && v !== 'max replicas' && v !== 'port') throw new Error(`${a.taskId} on ${a.nodeId}: ${v}`);
    model.add(i, t);
  }
  nodes.forEach((n, i) => {
    expect(model.cpu[i]).toBeLessThanOrEqual(Math.max(n.resources.nanoCPUs, n.reserved?.nanoCPUs ?? 0));
    expect(model.mem[i]).toBeLessThanOrEqual(Math.max(n.resources.memoryBytes, n.reserved?.memoryBytes ?? 0));
    expect(model.gpu[i]).toBeLessThanOrEqual(n.resources.generic?.gpu ?? 0);
  });
  // Ports: a host port is bound at most once per node.
  const portUse = new Map<string, number>();
  for (const a of result.assignments) {
    for (const p of byId.get(a.taskId)!.hostPorts ?? []) {
      const k = `${a.nodeId}/${p.port}`;
      portUse.set(k, (portUse.get(k) ?? 0) + 1);
      expect(nodes[index.get(a.nodeId)!]!.hostPortsInUse?.some((q) => q.port === p.port) ?? false).toBe(false);
    }
  }
  for (const c of portUse.values()) expect(c).toBe(1);
  // Max replicas: on each node that received a task of a limited service, the service stays within it.
  for (const a of result.assignments) {
    const t = byId.get(a.taskId)!;
    if (t.maxReplicasPerNode) expect(model.svc[index.get(a.nodeId)!]!.get(t.serviceId)).toBeLessThanOrEqual(t.maxReplicasPerNode);
  }
  return model;
}

// ------------------------------------------------------------------------------------------------

describe('scheduler properties', () => {
  it('never overcommits, breaks a rule, or uses an unavailable node; unplaced tasks truly fit nowhere', () => {
    fc.assert(
      fc.property(nodesArb(), tasksArb(), strategyArb, fc.boolean(), fc.boolean(), (nodes, tasks, strategy, spareGenericNodes, spreadReplicas) => {
        const result = schedule({ nodes }, tasks, { strategy, spareGenericNodes, spreadReplicas });
        const model = checkResult(nodes, tasks, result);
        const byId = new Map(tasks.map((t) => [t.id, t] as const));
        // Completeness by brute force: in the final state no node could take an unplaced task.
        for (const u of result.unplaced) {
          const t = byId.get(u.taskId)!;
          for (let i = 0; i < nodes.length; i++) expect(model.violation(i, t), `${u.taskId} fits ${nodes[i]!.id} yet: ${u.reason}`).not.toBeNull();
          expect(u.reason).toMatch(/^no suitable node \(/);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('finds a node for a single task whenever one exists (brute force)', () => {
    fc.assert(
      fc.property(nodesArb(), tasksArb(), strategyArb, fc.boolean(), fc.boolean(), (nodes, tasks, strategy, spareGenericNodes, spreadReplicas) => {
        const task = tasks[0]!;
        const model = new Model(nodes);
        const possible = nodes.some((_, i) => model.violation(i, task) === null);
        const result = schedule({ nodes }, [task], { strategy, spareGenericNodes, spreadReplicas });
        expect(result.assignments.length === 1).toBe(possible);
      }),
      { numRuns: RUNS },
    );
  });

  it('is deterministic: the same input gives the same output', () => {
    fc.assert(
      fc.property(nodesArb(), tasksArb(), strategyArb, fc.boolean(), (nodes, tasks, strategy, spreadReplicas) => {
        const a = schedule({ nodes }, tasks, { strategy, spreadReplicas });
        const b = schedule({ nodes: structuredClone(nodes) }, structuredClone(tasks), { strategy, spreadReplicas });
        expect(b).toEqual(a);
      }),
      { numRuns: RUNS },
    );
  });

  it('binpack uses no more nodes than first-fit-decreasing (resources only, from empty)', () => {
    fc.assert(
      fc.property(nodesArb(true, 6), tasksArb(true), (nodes, tasks) => {
        const ours = schedule({ nodes }, tasks);
        const ffd = firstFitDecreasing(nodes, tasks);
        expect(ours.unplaced.length).toBeLessThanOrEqual(ffd.unplaced);
        if (ours.unplaced.length === ffd.unplaced) expect(new Set(ours.assignments.map((a) => a.nodeId)).size).toBeLessThanOrEqual(ffd.nodesUsed);
      }),
      { numRuns: RUNS },
    );
  });
});

function firstFitDecreasing(nodes: SchedNode[], tasks: TaskToPlace[]): { nodesUsed: number; unplaced: number } {
  const maxCpu = Math.max(...nodes.map((n) => n.resources.nanoCPUs), 0);
  const maxMem = Math.max(...nodes.map((n) => n.resources.memoryBytes), 0);
  const size = (t: TaskToPlace): number => (maxCpu ? t.reservations!.nanoCPUs / maxCpu : 0) + (maxMem ? t.reservations!.memoryBytes / maxMem : 0);
  const sorted = [...tasks].sort((a, b) => size(b) - size(a));
  const model = new Model(nodes);
  const used = new Set<number>();
  let unplaced = 0;
  for (const t of sorted) {
    const i = nodes.findIndex((_, k) => model.violation(k, t) === null);
    if (i < 0) unplaced++;
    else {
      model.add(i, t);
      used.add(i);
    }
  }
  return { nodesUsed: used.size, unplaced };
}

describe('rebalance properties', () => {
  it('every planned move keeps all invariants, within the move budget', () => {
    fc.assert(
      fc.property(
        nodesArb(),
        tasksArb(),
        strategyArb,
        fc.constantFrom('spread' as const, 'consolidate' as const),
        fc.integer({ min: 0, max: 12 }),
        fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 3 }),
        (nodes, tasks, strategy, goal, maxMoves, reactivate) => {
          // Place, then describe the cluster as the manager would (reservations include the tasks),
          // and bring back some unavailable nodes: the situation rebalancing exists for.
          const result = schedule({ nodes }, tasks, { strategy });
          const byId = new Map(tasks.map((t) => [t.id, t] as const));
          const model = new Model(nodes);
          const index = new Map(nodes.map((n, i) => [n.id, i] as const));
          for (const a of result.assignments) model.add(index.get(a.nodeId)!, byId.get(a.taskId)!);
          const current: SchedNode[] = nodes.map((n, i) => ({
            ...n,
            ...(reactivate.includes(i) ? { availability: 'active' as const, status: 'ready' as const } : {}),
            reserved: { nanoCPUs: model.cpu[i]!, memoryBytes: model.mem[i]!, generic: { gpu: model.gpu[i]! } },
            hostPortsInUse: [...model.ports[i]!].map((port) => ({ protocol: 'tcp' as const, port })),
            serviceTasks: Object.fromEntries(model.svc[i]!),
          }));
          const placed: PlacedTask[] = result.assignments.map((a) => ({ ...byId.get(a.taskId)!, nodeId: a.nodeId }));
          const plan = planRebalance({ nodes: current }, placed, { goal, maxMoves });
          expect(plan.moves.length).toBeLessThanOrEqual(maxMoves);

          const after = new Model(current);
          const where = new Map(placed.map((p) => [p.id, index.get(p.nodeId)!] as const));
          for (const m of plan.moves) {
            const t = byId.get(m.taskId)!;
            const from = index.get(m.from)!;
            const to = index.get(m.to)!;
            expect(where.get(m.taskId)).toBe(from);
            expect(to).not.toBe(from);
            after.add(from, t, -1);
            expect(after.violation(to, t), `move ${m.taskId} ${m.from} -> ${m.to}`).toBeNull();
            after.add(to, t);
            where.set(m.taskId, to);
          }
          for (const id of plan.freedNodes) expect([...where.values()].includes(index.get(id)!)).toBe(false);
          if (goal === 'spread') {
            // No move makes a service's spread over nodes worse when it has no preferences.
            for (const s of new Set(plan.moves.map((m) => m.serviceId))) {
              if (byId.get(`${s}.0`)?.preferences) continue;
              const sq = (m: Model): number => m.svc.reduce((acc, x) => acc + (x.get(s) ?? 0) ** 2, 0);
              expect(sq(after)).toBeLessThan(sq(new Model(current)));
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('incremental Scheduler properties', () => {
  type Op = { kind: 'place'; service: number } | { kind: 'release'; pick: number } | { kind: 'availability'; node: number; to: 'active' | 'drain' | 'pause' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('place' as const), service: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('availability' as const), node: fc.nat(), to: fc.constantFrom('active' as const, 'drain' as const, 'pause' as const) }),
  );

  it('stays safe and complete across place, release and drain/activate, with indexes kept between calls', () => {
    fc.assert(
      fc.property(
        nodesArb(false, 8),
        fc.tuple(serviceArb(0, false), serviceArb(1, false), serviceArb(2, false), serviceArb(3, false)),
        fc.array(opArb, { minLength: 1, maxLength: 12 }),
        strategyArb,
        fc.boolean(),
        (initial, services, ops, strategy, spreadReplicas) => {
          let nodes = initial;
          const scheduler = new Scheduler({ nodes }, { strategy, spreadReplicas });
          const model = new Model(nodes);
          const index = new Map(nodes.map((n, i) => [n.id, i] as const));
          const running = new Map<string, { task: TaskToPlace; node: number }>();
          let generation = 0;
          for (const op of ops) {
            if (op.kind === 'place') {
              generation++;
              const batch = services[op.service]!.map((t) => ({ ...t, id: `${t.id}.g${generation}` }));
              const result = scheduler.place(batch);
              expect(result.assignments.length + result.unplaced.length).toBe(batch.length);
              const byId = new Map(batch.map((t) => [t.id, t] as const));
              for (const a of result.assignments) {
                const i = index.get(a.nodeId)!;
                const t = byId.get(a.taskId)!;
                expect(model.violation(i, t), `${a.taskId} on ${a.nodeId}`).toBeNull();
                model.add(i, t);
                running.set(t.id, { task: t, node: i });
              }
              for (const u of result.unplaced) {
                const t = byId.get(u.taskId)!;
                for (let i = 0; i < nodes.length; i++) expect(model.violation(i, t), `${u.taskId} fits ${nodes[i]!.id} yet: ${u.reason}`).not.toBeNull();
              }
            } else if (op.kind === 'release') {
              if (running.size === 0) continue;
              const ids = [...running.keys()];
              const id = ids[op.pick % ids.length]!;
              const r = running.get(id)!;
              scheduler.release([id]);
              model.add(r.node, r.task, -1);
              running.delete(id);
            } else {
              if (nodes.length === 0) continue;
              const i = op.node % nodes.length;
              const changed = { ...nodes[i]!, availability: op.to };
              nodes = nodes.map((n, k) => (k === i ? changed : n));
              (model as { nodes: readonly SchedNode[] }).nodes = nodes;
              scheduler.updateNodes([changed]);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('strategy order matches a naive reference', () => {
  // One service without preferences: the index machinery must pick exactly what a linear scan picks.
  const oneService = serviceArb(0, false).map((ts) => ts.map(({ preferences: _p, ...t }) => t));

  it('binpack: nodes ranked by fullness at the start of the call, filled first-fit', () => {
    fc.assert(
      fc.property(nodesArb(), oneService, (nodes, tasks) => {
        const model = new Model(nodes);
        const fullness = nodes.map((n, i) => {
          const c = n.resources.nanoCPUs > 0 ? model.cpu[i]! / n.resources.nanoCPUs : 0;
          const m = n.resources.memoryBytes > 0 ? model.mem[i]! / n.resources.memoryBytes : 0;
          return (c + m) / 2;
        });
        const rank = nodes.map((_, i) => i).sort((a, b) => fullness[b]! - fullness[a]! || a - b);
        const expected: Record<string, string> = {};
        for (const t of tasks) {
          const i = rank.find((k) => model.violation(k, t) === null);
          if (i === undefined) break;
          model.add(i, t);
          expected[t.id] = nodes[i]!.id;
        }
        const got = Object.fromEntries(schedule({ nodes }, tasks).assignments.map((a) => [a.taskId, a.nodeId]));
        expect(got).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it('spread: fewest tasks of the service, then fewest tasks overall, then listing order', () => {
    fc.assert(
      fc.property(nodesArb(), oneService, (nodes, tasks) => {
        const model = new Model(nodes);
        const total = (i: number): number => [...model.svc[i]!.values()].reduce((a, b) => a + b, 0);
        const expected: Record<string, string> = {};
        for (const t of tasks) {
          let best = -1;
          for (let i = 0; i < nodes.length; i++) {
            if (model.violation(i, t) !== null) continue;
            const key = (k: number): [number, number] => [model.svc[k]!.get(t.serviceId) ?? 0, total(k)];
            if (best < 0) best = i;
            else {
              const [a1, a2] = key(i);
              const [b1, b2] = key(best);
              if (a1 < b1 || (a1 === b1 && a2 < b2)) best = i;
            }
          }
          if (best < 0) break;
          model.add(best, t);
          expected[t.id] = nodes[best]!.id;
        }
        const got = Object.fromEntries(schedule({ nodes }, tasks, { strategy: 'spread' }).assignments.map((a) => [a.taskId, a.nodeId]));
        expect(got).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('spreadReplicas', () => {
  it('binpack with spreadReplicas never puts more than the fair share on a node while another eligible node is under it and fits', () => {
    fc.assert(
      fc.property(nodesArb(true, 6), serviceArb(0, true), (nodes, tasks) => {
        const result = schedule({ nodes }, tasks, { spreadReplicas: true });
        const perNode = new Map<string, number>();
        for (const a of result.assignments) perNode.set(a.nodeId, (perNode.get(a.nodeId) ?? 0) + 1);
        const share = Math.ceil(tasks.length / Math.max(1, nodes.length));
        const r = tasks[0]!.reservations!;
        const over = [...perNode.values()].some((c) => c > share);
        if (over) {
          // Doubling up is allowed only once no node under the share could take another task.
          const model = new Model(nodes);
          const index = new Map(nodes.map((n, i) => [n.id, i] as const));
          for (const a of result.assignments) model.add(index.get(a.nodeId)!, tasks[0]!);
          for (let i = 0; i < nodes.length; i++) {
            if ((perNode.get(nodes[i]!.id) ?? 0) >= share) continue;
            const fitsAtEnd = model.cpu[i]! + r.nanoCPUs <= nodes[i]!.resources.nanoCPUs && model.mem[i]! + r.memoryBytes <= nodes[i]!.resources.memoryBytes;
            expect(fitsAtEnd).toBe(false);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
