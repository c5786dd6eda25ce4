import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ServiceObject, TaskObject } from '../../api/objects.js';
import { ClusterStore, type Action, type Proposal } from './store.js';

const T = '2026-11-23T00:00:00.000Z';
const meta = { version: 0, createdAt: '', updatedAt: '' };

function service(id: string, name: string): ServiceObject {
  return { id, meta, spec: { name } as ServiceObject['spec'], specVersion: 1, endpoint: { virtualIps: [], ports: [] } };
}
function task(id: string, serviceId: string, nodeId = ''): TaskObject {
  return {
    id, meta, serviceId, serviceName: serviceId, slot: 1, nodeId, spec: {} as TaskObject['spec'], specVersion: 1, desiredState: 'running',
    status: { state: 'new', timestamp: T, message: '', error: '', exitCode: 0, containerId: '' }, networks: [],
  };
}
const p = (...actions: Action[]): Proposal => ({ actions, time: T });

describe('ClusterStore', () => {
  it('stamps versions with the raft index and keeps createdAt across updates', () => {
    const s = new ClusterStore();
    expect(s.apply(5, p({ op: 'create', kind: 'service', object: service('s1', 'web') })).ok).toBe(true);
    const created = s.get('service', 's1')!;
    expect(created.meta).toEqual({ version: 5, createdAt: T, updatedAt: T });
    s.apply(6, { actions: [{ op: 'update', kind: 'service', object: { ...created, specVersion: 2 }, expectVersion: 5 }], time: 'later' });
    expect(s.get('service', 's1')!.meta).toEqual({ version: 6, createdAt: T, updatedAt: 'later' });
  });

  it('refuses an update that names a stale version, and changes nothing', () => {
    const s = new ClusterStore();
    s.apply(1, p({ op: 'create', kind: 'service', object: service('s1', 'web') }));
    const r = s.apply(2, p(
      { op: 'create', kind: 'task', object: task('t1', 's1') },
      { op: 'update', kind: 'service', object: service('s1', 'web2'), expectVersion: 0 },
    ));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('conflict');
    expect(s.get('task', 't1')).toBeUndefined();
    expect(s.get('service', 's1')!.spec.name).toBe('web');
  });

  it('keeps service names unique, also within one proposal', () => {
    const s = new ClusterStore();
    s.apply(1, p({ op: 'create', kind: 'service', object: service('s1', 'web') }));
    const dup = s.apply(2, p({ op: 'create', kind: 'service', object: service('s2', 'web') }));
    expect(dup.ok === false && dup.error.message).toMatch(/name "web" is already in use by service s1/);
    const both = s.apply(3, p({ op: 'create', kind: 'service', object: service('s3', 'api') }, { op: 'create', kind: 'service', object: service('s4', 'api') }));
    expect(both.ok).toBe(false);
    // A rename that frees a name lets another take it in the same proposal.
    const swap = s.apply(4, p(
      { op: 'delete', kind: 'service', id: 's1' },
      { op: 'create', kind: 'service', object: service('s5', 'web') },
    ));
    expect(swap.ok).toBe(true);
    expect(s.findByName('service', 'web')!.id).toBe('s5');
  });

  it('indexes tasks by service and node as they move', () => {
    const s = new ClusterStore();
    s.apply(1, p({ op: 'create', kind: 'task', object: task('t1', 's1') }, { op: 'create', kind: 'task', object: task('t2', 's1', 'n1') }));
    expect(s.tasksOfService('s1').map((t) => t.id).sort()).toEqual(['t1', 't2']);
    expect(s.tasksOfNode('n1').map((t) => t.id)).toEqual(['t2']);
    s.apply(2, p({ op: 'update', kind: 'task', object: { ...s.get('task', 't1')!, nodeId: 'n1' }, expectVersion: 1 }));
    expect(s.tasksOfNode('n1').map((t) => t.id).sort()).toEqual(['t1', 't2']);
    s.apply(3, p({ op: 'delete', kind: 'task', id: 't2' }));
    expect(s.tasksOfNode('n1').map((t) => t.id)).toEqual(['t1']);
    expect(s.tasksOfService('s1').map((t) => t.id)).toEqual(['t1']);
  });

  it('tells watchers what changed, once per applied proposal', () => {
    const s = new ClusterStore();
    const seen: string[] = [];
    const stop = s.watch((events) => seen.push(events.map((e) => `${e.op}:${e.kind}:${e.object.id}@${e.version}`).join(',')));
    s.apply(1, p({ op: 'create', kind: 'service', object: service('s1', 'web') }, { op: 'create', kind: 'task', object: task('t1', 's1') }));
    s.apply(2, p({ op: 'update', kind: 'service', object: service('s1', 'web'), expectVersion: 99 })); // refused: no event
    s.apply(3, p({ op: 'delete', kind: 'task', id: 't1' }));
    stop();
    s.apply(4, p({ op: 'delete', kind: 'service', id: 's1' }));
    expect(seen).toEqual(['create:service:s1@1,create:task:t1@1', 'delete:task:t1@3']);
  });

  it('is deterministic, and a snapshot plus the rest of the log equals the whole log', () => {
    const ids = fc.constantFrom('a', 'b', 'c', 'd');
    const action = fc.oneof(
      fc.record({ op: fc.constant('create' as const), id: ids, name: ids }),
      fc.record({ op: fc.constant('update' as const), id: ids, name: ids, stale: fc.boolean() }),
      fc.record({ op: fc.constant('delete' as const), id: ids }),
      fc.record({ op: fc.constant('task' as const), id: ids, svc: ids, node: ids }),
    );
    fc.assert(fc.property(fc.array(fc.array(action, { minLength: 1, maxLength: 3 }), { maxLength: 40 }), fc.nat(40), (log, cut) => {
      const build = (s: ClusterStore, batch: typeof log[number]): Proposal => p(...batch.map((a): Action => {
        if (a.op === 'create') return { op: 'create', kind: 'service', object: service(a.id, a.name) };
        if (a.op === 'update') {
          const cur = s.get('service', a.id);
          return { op: 'update', kind: 'service', object: service(a.id, a.name), expectVersion: a.stale ? -1 : (cur?.meta.version ?? 0) };
        }
        if (a.op === 'delete') return { op: 'delete', kind: 'service', id: a.id };
        return { op: 'create', kind: 'task', object: task(`${a.id}${a.svc}`, a.svc, a.node) };
      }));
      const one = new ClusterStore();
      const two = new ClusterStore();
      const proposals: Proposal[] = [];
      log.forEach((batch, i) => {
        const prop = build(one, batch);
        proposals.push(prop);
        one.apply(i + 1, prop);
      });
      proposals.forEach((prop, i) => two.apply(i + 1, prop));
      expect(new TextDecoder().decode(two.snapshot())).toBe(new TextDecoder().decode(one.snapshot()));

      const k = Math.min(cut, proposals.length);
      const partial = new ClusterStore();
      proposals.slice(0, k).forEach((prop, i) => partial.apply(i + 1, prop));
      const restored = new ClusterStore();
      restored.restore(partial.snapshot());
      proposals.slice(k).forEach((prop, i) => restored.apply(k + i + 1, prop));
      expect(new TextDecoder().decode(restored.snapshot())).toBe(new TextDecoder().decode(one.snapshot()));
      for (const svc of ['a', 'b', 'c', 'd']) {
        expect(restored.tasksOfService(svc).map((t) => t.id).sort()).toEqual(one.tasksOfService(svc).map((t) => t.id).sort());
      }
    }), { numRuns: 300 });
  });
});
