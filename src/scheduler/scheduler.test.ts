import { describe, expect, it } from 'vitest';
import { Scheduler, schedule, type SchedNode, type TaskToPlace } from './index.js';

const GiB = 1024 ** 3;
const CPU = 1e9;

function node(id: string, over: Partial<SchedNode> = {}): SchedNode {
  return {
    id,
    hostname: id,
    role: 'worker',
    availability: 'active',
    status: 'ready',
    platform: { os: 'linux', arch: 'amd64' },
    resources: { nanoCPUs: 4 * CPU, memoryBytes: 8 * GiB },
    ...over,
  };
}

function tasks(service: string, n: number, over: Partial<TaskToPlace> = {}): TaskToPlace[] {
  return Array.from({ length: n }, (_, k) => ({ id: `${service}.${k}`, serviceId: service, ...over }));
}

const placedOn = (r: { assignments: { taskId: string; nodeId: string }[] }): Record<string, string> =>
  Object.fromEntries(r.assignments.map((a) => [a.taskId, a.nodeId]));

describe('filter messages', () => {
  it('counts each rejection reason across nodes, in pipeline order', () => {
    const nodes = [
      ...Array.from({ length: 7 }, (_, k) => node(`small${k}`, { labels: { zone: 'a' }, resources: { nanoCPUs: 4 * CPU, memoryBytes: 1 * GiB } })),
      ...Array.from({ length: 3 }, (_, k) => node(`b${k}`, { labels: { zone: 'b' } })),
    ];
    const r = schedule({ nodes }, tasks('web', 1, { reservations: { nanoCPUs: CPU, memoryBytes: 2 * GiB }, constraints: ['node.labels.zone==a'] }));
    expect(r.unplaced).toEqual([
      { taskId: 'web.0', reason: 'no suitable node (constraint node.labels.zone==a not met on 3 nodes; insufficient memory on 7 nodes)' },
    ]);
  });

  it.each<[string, SchedNode, Partial<TaskToPlace>, string]>([
    ['down', node('n', { status: 'down' }), {}, 'no suitable node (node down on 1 node)'],
    ['drained', node('n', { availability: 'drain' }), {}, 'no suitable node (node drained on 1 node)'],
    ['paused', node('n', { availability: 'pause' }), {}, 'no suitable node (node paused on 1 node)'],
    ['platform', node('n', { platform: { os: 'linux', arch: 'arm64' } }), { platforms: [{ os: 'linux', arch: 'amd64' }] }, 'no suitable node (platform linux/arm64 not supported by the image on 1 node)'],
    ['constraint', node('n', { role: 'manager' }), { constraints: ['node.role==worker'] }, 'no suitable node (constraint node.role==worker not met on 1 node)'],
    ['memory', node('n'), { reservations: { nanoCPUs: 0, memoryBytes: 9 * GiB } }, 'no suitable node (insufficient memory on 1 node)'],
    ['cpu', node('n'), { reservations: { nanoCPUs: 5 * CPU, memoryBytes: 0 } }, 'no suitable node (insufficient cpu on 1 node)'],
    ['generic', node('n', { resources: { nanoCPUs: CPU, memoryBytes: GiB, generic: { gpu: 2 } }, reserved: { nanoCPUs: 0, memoryBytes: 0, generic: { gpu: 2 } } }), { reservations: { nanoCPUs: 0, memoryBytes: 0, generic: { gpu: 1 } } }, 'no suitable node (insufficient gpu on 1 node)'],
    ['generic missing', node('n'), { reservations: { nanoCPUs: 0, memoryBytes: 0, generic: { gpu: 1 } } }, 'no suitable node (insufficient gpu on 1 node)'],
    ['port', node('n', { hostPortsInUse: [{ protocol: 'tcp', port: 80 }] }), { hostPorts: [{ protocol: 'tcp', port: 80 }] }, 'no suitable node (host port tcp/80 in use on 1 node)'],
    ['max replicas', node('n', { serviceTasks: { web: 2 } }), { maxReplicasPerNode: 2 }, 'no suitable node (max replicas per node (2) reached on 1 node)'],
  ])('%s', (_name, n, over, reason) => {
    const r = schedule({ nodes: [n] }, tasks('web', 1, over));
    expect(r.assignments).toEqual([]);
    expect(r.unplaced).toEqual([{ taskId: 'web.0', reason }]);
  });

  it('reports an empty cluster and a malformed constraint', () => {
    expect(schedule({ nodes: [] }, tasks('web', 1)).unplaced[0]!.reason).toBe('no suitable node (no nodes in the cluster)');
    expect(schedule({ nodes: [node('n')] }, tasks('web', 1, { constraints: ['zone=a'] })).unplaced[0]!.reason).toBe(
      'invalid constraint "zone=a": expected an operator == or != (use == rather than =)',
    );
  });

  it('places what fits and explains the rest of the batch', () => {
    const r = schedule({ nodes: [node('n')] }, tasks('web', 5, { reservations: { nanoCPUs: CPU, memoryBytes: GiB } }));
    expect(r.assignments.map((a) => a.taskId)).toEqual(['web.0', 'web.1', 'web.2', 'web.3']);
    expect(r.unplaced).toEqual([{ taskId: 'web.4', reason: 'no suitable node (insufficient cpu on 1 node)' }]);
  });
});

describe('strategies', () => {
  const res = { nanoCPUs: CPU, memoryBytes: GiB };

  it('binpack fills the fullest node that fits', () => {
    const nodes = [node('empty'), node('half', { reserved: { nanoCPUs: 2 * CPU, memoryBytes: 4 * GiB } }), node('full', { reserved: { nanoCPUs: 4 * CPU, memoryBytes: 8 * GiB } })];
    const r = schedule({ nodes }, tasks('web', 3, { reservations: res }));
    expect(placedOn(r)).toEqual({ 'web.0': 'half', 'web.1': 'half', 'web.2': 'empty' });
  });

  it('binpack places big tasks first so they still find room', () => {
    const nodes = [node('a'), node('b')];
    const small = tasks('small', 4, { reservations: { nanoCPUs: CPU, memoryBytes: GiB } });
    const big = tasks('big', 1, { reservations: { nanoCPUs: 4 * CPU, memoryBytes: GiB } });
    const r = schedule({ nodes }, [...small, ...big]);
    expect(r.unplaced).toEqual([]);
    expect(new Set(r.assignments.filter((a) => a.taskId.startsWith('small')).map((a) => a.nodeId)).size).toBe(1);
  });

  it('spread prefers the fewest tasks of the service, then the fewest tasks overall', () => {
    const nodes = [node('a', { serviceTasks: { web: 1 } }), node('b', { serviceTasks: { db: 3 } }), node('c', { serviceTasks: { db: 1 } })];
    const r = schedule({ nodes }, tasks('web', 3), { strategy: 'spread' });
    expect(placedOn(r)).toEqual({ 'web.0': 'c', 'web.1': 'b', 'web.2': 'a' });
  });

  it('spread preferences split across label groups first, in both strategies', () => {
    const nodes = [
      node('a1', { labels: { zone: 'a' } }),
      node('a2', { labels: { zone: 'a' } }),
      node('a3', { labels: { zone: 'a' } }),
      node('b1', { labels: { zone: 'b' } }),
      node('x1'), // no zone label: a group of its own
    ];
    for (const strategy of ['binpack', 'spread'] as const) {
      const r = schedule({ nodes }, tasks('web', 6, { preferences: [{ spread: 'node.labels.zone' }] }), { strategy });
      const perZone: Record<string, number> = {};
      for (const a of r.assignments) perZone[a.nodeId[0]!] = (perZone[a.nodeId[0]!] ?? 0) + 1;
      expect(perZone).toEqual({ a: 2, b: 2, x: 2 });
    }
  });

  it('binpack packs replicas together by default; spreadReplicas gives each node its fair share first', () => {
    const nodes = [node('a'), node('b'), node('c')];
    expect(new Set(schedule({ nodes }, tasks('web', 3)).assignments.map((a) => a.nodeId))).toEqual(new Set(['a']));
    const spreadOut = schedule({ nodes }, tasks('web', 3), { spreadReplicas: true });
    expect(spreadOut.assignments.map((a) => a.nodeId).sort()).toEqual(['a', 'b', 'c']);
    const seven = schedule({ nodes }, tasks('web', 7), { spreadReplicas: true });
    const perNode: Record<string, number> = {};
    for (const a of seven.assignments) perNode[a.nodeId] = (perNode[a.nodeId] ?? 0) + 1;
    expect(perNode).toEqual({ a: 3, b: 3, c: 1 });
  });

  it('honours max replicas per node and host ports across a batch', () => {
    const nodes = [node('a'), node('b'), node('c')];
    const r1 = schedule({ nodes }, tasks('web', 4, { maxReplicasPerNode: 1 }));
    expect(new Set(r1.assignments.map((a) => a.nodeId)).size).toBe(3);
    expect(r1.unplaced[0]!.reason).toBe('no suitable node (max replicas per node (1) reached on 3 nodes)');
    const r2 = schedule({ nodes }, tasks('web', 4, { hostPorts: [{ protocol: 'tcp', port: 80 }] }));
    expect(new Set(r2.assignments.map((a) => a.nodeId)).size).toBe(3);
    expect(r2.unplaced[0]!.reason).toBe('no suitable node (host port tcp/80 in use on 3 nodes)');
  });
});

describe('Scheduler (incremental)', () => {
  it('adopts running tasks so they can be released later', () => {
    const s = new Scheduler({ nodes: [node('a'), node('b')] });
    s.adopt([
      { id: 'web.0', serviceId: 'web', nodeId: 'a', reservations: { nanoCPUs: 3 * CPU, memoryBytes: GiB }, hostPorts: [{ protocol: 'tcp', port: 80 }] },
      { id: 'ghost.0', serviceId: 'ghost', nodeId: 'nowhere' },
    ]);
    expect(s.nodeOf('web.0')).toBe('a');
    expect(s.nodeOf('ghost.0')).toBeUndefined();
    const r = s.place(tasks('web', 1, { id: 'web.1', reservations: { nanoCPUs: 2 * CPU, memoryBytes: GiB }, hostPorts: [{ protocol: 'tcp', port: 80 }] } as Partial<TaskToPlace>));
    expect(r.assignments).toEqual([{ taskId: 'web.1', nodeId: 'b' }]);
    s.release(['web.0']);
    expect(s.usage('a')).toMatchObject({ freeNanoCPUs: 4 * CPU, tasks: 0 });
    expect(s.place(tasks('db', 1, { reservations: { nanoCPUs: 4 * CPU, memoryBytes: GiB } })).assignments).toEqual([{ taskId: 'db.0', nodeId: 'a' }]);
  });

  it('keeps placed tasks across calls, frees them on release, follows drains', () => {
    const nodes = [node('a'), node('b')];
    const s = new Scheduler({ nodes });
    const first = s.place(tasks('web', 4, { reservations: { nanoCPUs: CPU, memoryBytes: GiB } }));
    expect(new Set(first.assignments.map((a) => a.nodeId))).toEqual(new Set(['a']));
    expect(s.usage('a')).toMatchObject({ freeNanoCPUs: 0, tasks: 4 });
    expect(s.place(tasks('web', 1)).unplaced[0]!.reason).toContain('already placed');

    s.updateNodes([{ ...nodes[0]!, availability: 'drain' }]);
    s.release(first.assignments.map((a) => a.taskId));
    expect(s.usage('a')).toMatchObject({ freeNanoCPUs: 4 * CPU, tasks: 0 });
    const again = s.place(tasks('web', 4, { reservations: { nanoCPUs: CPU, memoryBytes: GiB } }));
    expect(new Set(again.assignments.map((a) => a.nodeId))).toEqual(new Set(['b']));

    s.updateNodes([{ ...nodes[0]!, availability: 'active', labels: { zone: 'z' } }]); // not only availability: rebuild
    expect(s.place(tasks('db', 1, { constraints: ['node.labels.zone==z'] })).assignments).toEqual([{ taskId: 'db.0', nodeId: 'a' }]);
    expect(s.removeNodes(['b']).sort()).toEqual(['web.0', 'web.1', 'web.2', 'web.3']);
    expect(s.nodeOf('db.0')).toBe('a');
  });
});

describe('generic resources', () => {
  const plain = { nanoCPUs: CPU, memoryBytes: GiB };
  it('places tasks needing a GPU first in a call, and can spare GPU nodes for them', () => {
    const nodes = [node('gpu', { resources: { nanoCPUs: 2 * CPU, memoryBytes: 2 * GiB, generic: { gpu: 1 } } }), node('plain', { resources: { nanoCPUs: 2 * CPU, memoryBytes: 2 * GiB } })];
    const mixed = [...tasks('web', 2, { reservations: plain }), ...tasks('ml', 1, { reservations: { ...plain, generic: { gpu: 1 } } })];
    const r = schedule({ nodes }, mixed);
    expect(placedOn(r)['ml.0']).toBe('gpu');
    const spared = schedule({ nodes }, tasks('web', 2, { reservations: plain }), { spareGenericNodes: true });
    expect(new Set(spared.assignments.map((a) => a.nodeId))).toEqual(new Set(['plain']));
    const packed = schedule({ nodes }, tasks('web', 2, { reservations: plain }));
    expect(new Set(packed.assignments.map((a) => a.nodeId))).toEqual(new Set(['gpu']));
  });
});
