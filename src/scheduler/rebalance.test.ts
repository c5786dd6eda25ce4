import { describe, expect, it } from 'vitest';
import { planRebalance, type PlacedTask, type SchedNode } from './index.js';

const GiB = 1024 ** 3;
const CPU = 1e9;

/** Nodes described as the manager would: reservations, ports and per-service counts include `placed`. */
function cluster(specs: { id: string; zone?: string; cpus?: number; availability?: SchedNode['availability'] }[], placed: PlacedTask[]): SchedNode[] {
  return specs.map((s): SchedNode => {
    const here = placed.filter((p) => p.nodeId === s.id);
    const serviceTasks: Record<string, number> = {};
    for (const p of here) serviceTasks[p.serviceId] = (serviceTasks[p.serviceId] ?? 0) + 1;
    return {
      id: s.id,
      hostname: s.id,
      role: 'worker',
      availability: s.availability ?? 'active',
      status: 'ready',
      labels: s.zone ? { zone: s.zone } : ({} as Record<string, string>),
      resources: { nanoCPUs: (s.cpus ?? 4) * CPU, memoryBytes: 8 * GiB },
      reserved: {
        nanoCPUs: here.reduce((a, p) => a + (p.reservations?.nanoCPUs ?? 0), 0),
        memoryBytes: here.reduce((a, p) => a + (p.reservations?.memoryBytes ?? 0), 0),
      },
      serviceTasks,
    };
  });
}

const task = (id: string, nodeId: string, extra: Partial<PlacedTask> = {}): PlacedTask => ({
  id,
  serviceId: id.split('.')[0]!,
  nodeId,
  reservations: { nanoCPUs: CPU, memoryBytes: GiB },
  ...extra,
});

describe('planRebalance', () => {
  it('spread: a node back from maintenance gets its share of each service, within the budget', () => {
    // web ran on a and b while c was drained; c is active again.
    const placed = ['a', 'a', 'a', 'b', 'b', 'b'].map((n, k) => task(`web.${k}`, n));
    const nodes = cluster([{ id: 'a' }, { id: 'b' }, { id: 'c' }], placed);
    const plan = planRebalance({ nodes }, placed, { goal: 'spread', maxMoves: 10 });
    expect(plan.moves).toEqual([
      { taskId: 'web.0', serviceId: 'web', from: 'a', to: 'c' },
      { taskId: 'web.3', serviceId: 'web', from: 'b', to: 'c' },
    ]);
    expect(planRebalance({ nodes }, placed, { goal: 'spread', maxMoves: 1 }).moves).toHaveLength(1);
  });

  it('spread: evens out preference groups before nodes, and never breaks a constraint', () => {
    const placed = [task('api.0', 'a1'), task('api.1', 'a2'), task('api.2', 'a1'), task('api.3', 'a2')].map((t) => ({
      ...t,
      preferences: [{ spread: 'node.labels.zone' }],
    }));
    const pinned = [task('db.0', 'a1', { constraints: ['node.labels.zone==a'] }), task('db.1', 'a1', { constraints: ['node.labels.zone==a'] })];
    const all = [...placed, ...pinned];
    const nodes = cluster([{ id: 'a1', zone: 'a' }, { id: 'a2', zone: 'a' }, { id: 'b1', zone: 'b' }, { id: 'b2', zone: 'b' }], all);
    const plan = planRebalance({ nodes }, all, { goal: 'spread', maxMoves: 10 });
    const apiMoves = plan.moves.filter((m) => m.serviceId === 'api');
    expect(apiMoves).toHaveLength(2);
    expect(new Set(apiMoves.map((m) => m.to))).toEqual(new Set(['b1', 'b2']));
    // db may only even out inside zone a.
    expect(plan.moves.filter((m) => m.serviceId === 'db')).toEqual([{ taskId: 'db.0', serviceId: 'db', from: 'a1', to: 'a2' }]);
  });

  it('consolidate: empties the least-full nodes onto busy ones, whole nodes or nothing', () => {
    const placed = [task('a.0', 'n1'), task('a.1', 'n1'), task('b.0', 'n2'), task('c.0', 'n3', { reservations: { nanoCPUs: 3 * CPU, memoryBytes: GiB } })];
    const nodes = cluster([{ id: 'n1' }, { id: 'n2' }, { id: 'n3' }, { id: 'n4', availability: 'drain' }], placed);
    const plan = planRebalance({ nodes }, placed, { goal: 'consolidate', maxMoves: 10 });
    expect(plan.freedNodes).toEqual(['n2']);
    expect(plan.moves).toEqual([{ taskId: 'b.0', serviceId: 'b', from: 'n2', to: 'n3' }]);
  });

  it('consolidate: leaves alone a node whose tasks cannot all move, or that runs unlisted tasks', () => {
    const placed = [task('a.0', 'n1', { hostPorts: [{ protocol: 'tcp', port: 80 }] }), task('a.1', 'n2', { hostPorts: [{ protocol: 'tcp', port: 80 }] })];
    const nodes = cluster([{ id: 'n1' }, { id: 'n2' }], placed).map((n) => ({ ...n, hostPortsInUse: [{ protocol: 'tcp' as const, port: 80 }] }));
    expect(planRebalance({ nodes }, placed, { goal: 'consolidate', maxMoves: 10 })).toEqual({ moves: [], freedNodes: [] });
    const onlyOneListed = planRebalance({ nodes: cluster([{ id: 'n1' }, { id: 'n2' }], [task('x.0', 'n1'), task('y.0', 'n2')]) }, [task('y.0', 'n2')], {
      goal: 'consolidate',
      maxMoves: 10,
    });
    expect(onlyOneListed.freedNodes).toEqual(['n2']);
  });
});
