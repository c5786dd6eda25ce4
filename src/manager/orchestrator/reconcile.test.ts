import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeObject, ServiceObject, ServiceSpec, TaskObject, TaskState } from '../../api/objects.js';
import { ClusterStore } from '../state/store.js';
import { reconcile } from './reconcile.js';

const NOW = '2026-11-23T00:00:00.000Z';

class Cluster {
  store = new ClusterStore();
  private index = 0;
  private ids = 0;

  apply(actions: Parameters<ClusterStore['apply']>[1]['actions']): void {
    if (actions.length === 0) return;
    const r = this.store.apply(++this.index, { actions, time: NOW });
    if (!r.ok) throw r.error;
  }

  reconcile(limit = 5) {
    return reconcile(
      { services: this.store.list('service'), nodes: this.store.list('node'), tasksOfService: (id) => this.store.tasksOfService(id) },
      { now: NOW, newId: () => `t${++this.ids}`, taskHistoryLimit: limit },
    );
  }

  /** Reconcile until nothing changes; returns the number of passes. */
  converge(): number {
    for (let pass = 1; pass < 20; pass++) {
      const actions = this.reconcile();
      if (actions.length === 0) return pass;
      this.apply(actions);
    }
    throw new Error('reconcile did not reach a fixed point');
  }

  node(id: string, state: NodeObject['status']['state'] = 'ready', availability: NodeObject['spec']['availability'] = 'active'): NodeObject {
    const existing = this.store.get('node', id);
    const node: NodeObject = {
      id, meta: existing?.meta ?? { version: 0, createdAt: '', updatedAt: '' },
      spec: { role: 'worker', availability, labels: {} },
      description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 2e9, memoryBytes: 2 ** 31, generic: {} }, engineLabels: {} },
      status: { state, message: '', addr: '' },
    };
    this.apply([existing ? { op: 'update', kind: 'node', object: node, expectVersion: existing.meta.version } : { op: 'create', kind: 'node', object: node }]);
    return node;
  }

  service(id: string, mode: ServiceSpec['mode'], condition: 'none' | 'on-failure' | 'any' = 'any'): void {
    const existing = this.store.get('service', id);
    const spec = { name: id, mode, task: { restartPolicy: { condition } } } as unknown as ServiceSpec;
    const svc: ServiceObject = { id, meta: existing?.meta ?? { version: 0, createdAt: '', updatedAt: '' }, spec, specVersion: 1, endpoint: { virtualIps: [], ports: [] } };
    this.apply([existing ? { op: 'update', kind: 'service', object: svc, expectVersion: existing.meta.version } : { op: 'create', kind: 'service', object: svc }]);
  }

  setState(task: TaskObject, state: TaskState, nodeId = task.nodeId): void {
    this.apply([{ op: 'update', kind: 'task', object: { ...task, nodeId, status: { ...task.status, state } }, expectVersion: task.meta.version }]);
  }

  tasks(service: string) {
    return this.store.tasksOfService(service).sort((a, b) => a.slot - b.slot || a.meta.version - b.meta.version);
  }
  wanted(service: string) {
    return this.tasks(service).filter((t) => t.desiredState === 'running');
  }
}

describe('replicated orchestration', () => {
  it('creates one task per slot and then stands still', () => {
    const c = new Cluster();
    c.service('web', { replicated: { replicas: 3 } });
    c.converge();
    expect(c.wanted('web').map((t) => t.slot)).toEqual([1, 2, 3]);
    expect(c.reconcile()).toEqual([]);
  });

  it('scales down by shutting down the highest slots, and up again', () => {
    const c = new Cluster();
    c.service('web', { replicated: { replicas: 5 } });
    c.converge();
    c.service('web', { replicated: { replicas: 2 } });
    c.converge();
    expect(c.wanted('web').map((t) => t.slot)).toEqual([1, 2]);
    expect(c.tasks('web').filter((t) => t.desiredState === 'shutdown').map((t) => t.slot)).toEqual([3, 4, 5]);
    c.service('web', { replicated: { replicas: 4 } });
    c.converge();
    expect(c.wanted('web').map((t) => t.slot)).toEqual([1, 2, 3, 4]);
  });

  it('replaces a failed task in the same slot and keeps the failed one as history', () => {
    const c = new Cluster();
    c.service('web', { replicated: { replicas: 2 } });
    c.converge();
    const victim = c.wanted('web')[0]!;
    c.setState(victim, 'failed');
    c.converge();
    const slot1 = c.tasks('web').filter((t) => t.slot === 1);
    expect(slot1.map((t) => [t.id === victim.id, t.desiredState, t.status.state])).toEqual([[true, 'shutdown', 'failed'], [false, 'running', 'new']]);
  });

  it('does not restart a task that completed under condition none or on-failure', () => {
    for (const condition of ['none', 'on-failure'] as const) {
      const c = new Cluster();
      c.service('job', { replicated: { replicas: 1 } }, condition);
      c.converge();
      c.setState(c.wanted('job')[0]!, 'complete');
      expect(c.converge()).toBe(1);
      expect(c.tasks('job')).toHaveLength(1);
    }
  });

  it('orphans the tasks of a down node and replaces them; drains move tasks off a node', () => {
    const c = new Cluster();
    c.node('n1');
    c.node('n2');
    c.service('web', { replicated: { replicas: 2 } });
    c.converge();
    const [a, b] = c.wanted('web');
    c.setState(a!, 'running', 'n1');
    c.setState(b!, 'running', 'n2');
    c.node('n1', 'down');
    c.converge();
    expect(c.store.get('task', a!.id)!.status.state).toBe('orphaned');
    expect(c.wanted('web').filter((t) => t.slot === a!.slot && t.id !== a!.id)).toHaveLength(1);

    c.node('n2', 'ready', 'drain');
    c.converge();
    expect(c.store.get('task', b!.id)!.desiredState).toBe('shutdown');
    expect(c.wanted('web').filter((t) => t.slot === b!.slot)).toHaveLength(1);
  });

  it('keeps at most the history limit of finished tasks per slot', () => {
    const c = new Cluster();
    c.service('crashy', { replicated: { replicas: 1 } });
    c.converge();
    for (let i = 0; i < 9; i++) {
      c.setState(c.wanted('crashy')[0]!, 'failed');
      c.converge();
    }
    const history = c.tasks('crashy').filter((t) => t.desiredState !== 'running');
    expect(history).toHaveLength(5);
    expect(c.wanted('crashy')).toHaveLength(1);
  });
});

describe('global orchestration', () => {
  it('runs one task per eligible node, following joins, drains and losses', () => {
    const c = new Cluster();
    c.node('n1');
    c.node('n2');
    c.node('n3', 'ready', 'pause');
    c.service('agent', { global: {} });
    c.converge();
    expect(c.wanted('agent').map((t) => t.nodeId).sort()).toEqual(['n1', 'n2']);
    c.node('n4');
    c.node('n2', 'ready', 'drain');
    c.converge();
    expect(c.wanted('agent').map((t) => t.nodeId).sort()).toEqual(['n1', 'n4']);
  });
});

describe('reconcile properties', () => {
  it('always produces actions that apply, and reaches a fixed point with the right task count', () => {
    const event = fc.oneof(
      fc.record({ kind: fc.constant('scale' as const), replicas: fc.nat(6) }),
      fc.record({ kind: fc.constant('status' as const), pick: fc.nat(), state: fc.constantFrom<TaskState>('running', 'failed', 'complete', 'rejected', 'shutdown') }),
      fc.record({ kind: fc.constant('node' as const), node: fc.constantFrom('n1', 'n2', 'n3'), state: fc.constantFrom('ready', 'down') as fc.Arbitrary<'ready' | 'down'>, drain: fc.boolean() }),
    );
    fc.assert(fc.property(fc.array(event, { maxLength: 25 }), fc.constantFrom('none', 'on-failure', 'any') as fc.Arbitrary<'none' | 'on-failure' | 'any'>, (events, condition) => {
      const c = new Cluster();
      for (const n of ['n1', 'n2', 'n3']) c.node(n);
      let replicas = 2;
      c.service('s', { replicated: { replicas } }, condition);
      c.converge();
      for (const e of events) {
        if (e.kind === 'scale') { replicas = e.replicas; c.service('s', { replicated: { replicas } }, condition); }
        else if (e.kind === 'node') c.node(e.node, e.state, e.drain ? 'drain' : 'active');
        else {
          const live = c.tasks('s').filter((t) => t.desiredState === 'running' && !['complete', 'shutdown', 'failed', 'rejected', 'orphaned'].includes(t.status.state));
          const t = live[e.pick % Math.max(1, live.length)];
          if (t) c.setState(t, e.state, ['n1', 'n2', 'n3'][e.pick % 3]!);
        }
        c.converge();
        const wanted = c.wanted('s');
        // Every slot 1..replicas has exactly one wanted task, and no slot above has any.
        const slots = wanted.map((t) => t.slot).sort((a, b) => a - b);
        expect(new Set(slots).size).toBe(slots.length);
        expect(slots.every((s) => s >= 1 && s <= replicas)).toBe(true);
        if (condition === 'any') expect(slots).toHaveLength(replicas);
        // No wanted live task sits on a down or drained node.
        for (const t of wanted) {
          const node = t.nodeId ? c.store.get('node', t.nodeId) : undefined;
          if (node && !['complete', 'failed', 'shutdown', 'rejected', 'orphaned'].includes(t.status.state)) {
            expect(node.status.state).toBe('ready');
            expect(node.spec.availability).toBe('active');
          }
        }
      }
    }), { numRuns: 200 });
  });
});
