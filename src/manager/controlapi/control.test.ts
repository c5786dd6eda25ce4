import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../api/validation.js';
import type { ClusterLog } from '../state/cluster-log.js';
import { ControlError } from '../../api/errors.js';
import { ControlService } from './control.js';
import { attachmentTask } from '../allocator/attachment.js';
import { ClusterStore } from '../state/store.js';

/** A log of one: applies proposals at once. Real raft replaces it outside unit tests. */
function soloLog(store: ClusterStore): ClusterLog {
  return { propose: async (p) => store.apply(store.appliedIndex + 1, p), barrier: async () => {}, isLeader: () => true };
}

function setup(checkConstraint?: (c: string) => string | undefined) {
  const store = new ClusterStore();
  return { store, control: new ControlService(store, soloLog(store), checkConstraint) };
}

describe('ControlService', () => {
  it('removes a node with its containers\' network attachments, which then no longer hold the network', async () => {
    const { store, control } = setup();
    const net = await control.createNetwork({ name: 'att', driver: 'overlay', attachable: true });
    const node = {
      id: 'n1', meta: { version: 0, createdAt: '', updatedAt: '' }, spec: { role: 'worker' as const, availability: 'active' as const, labels: {} },
      description: { hostname: 'h1', platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1e9, generic: {} }, engineLabels: {} },
      status: { state: 'down' as const, message: '', addr: '' },
    };
    const task = { ...attachmentTask('t1', 'n1', net, { network: 'att', containerId: 'a'.repeat(64), containerName: 'solo' }, ''), networks: [{ networkId: net.id, addresses: ['10.0.1.2'] }] };
    store.apply(store.appliedIndex + 1, { actions: [{ op: 'create', kind: 'node', object: node }, { op: 'create', kind: 'task', object: { ...task, status: { ...task.status, state: 'assigned' } } }], time: '' });
    await expect(control.removeNetwork('att')).rejects.toThrow('network att is in use by container solo');
    expect(await control.listTasks({ node: 'n1' })).toEqual([]);
    const cluster = {
      id: 'cluster', meta: { version: 0, createdAt: '', updatedAt: '' }, swarmId: 's',
      spec: { taskHistoryLimit: 5, heartbeatPeriodMs: 1000, certExpiryMs: 0 }, rootCA: { certPem: '', keyPem: '' }, joinSecrets: { worker: '', manager: '' },
    };
    store.apply(store.appliedIndex + 1, { actions: [{ op: 'create', kind: 'cluster', object: cluster }], time: '' });
    await control.removeNode('n1', false);
    expect(store.get('task', 't1')).toBeUndefined();
    // Remembered, so that its session is refused if it comes back (dispatcher.test.ts).
    expect(store.list('cluster')[0]!.removedNodes).toEqual(['n1']);
    await control.removeNetwork('att');
  });

  it('creates a service with Docker defaults', async () => {
    const { control } = setup();
    const s = await control.createService({ name: 'web', task: { image: 'busybox' } });
    expect(s.spec.mode).toEqual({ replicated: { replicas: 1 } });
    expect(s.spec.task.restartPolicy.condition).toBe('any');
    expect(s.spec.update).toMatchObject({ parallelism: 1, failureAction: 'pause', order: 'stop-first' });
    expect(s.specVersion).toBe(1);
    expect((await control.getService('web')).id).toBe(s.id);
    expect((await control.getService(s.id.slice(0, 6))).id).toBe(s.id);
  });

  it.each([
    [{ name: 'web', task: { image: '' } }, /task.image: an image is required/],
    [{ name: 'bad name!', task: { image: 'x' } }, /name: must be/],
    [{ name: 'web', task: { image: 'x' }, mode: { replicated: { replicas: -1 } } }, /mode/],
    [{ name: 'web', task: { image: 'x', resources: { limits: { memoryBytes: 1000 } } } }, /minimum memory limit/],
    [{ name: 'web', task: { image: 'x' }, endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }, { targetPort: 81, publishedPort: 8080 }] } }, /8080\/tcp is given twice/],
  ])('refuses %j with one line', async (spec, message) => {
    const { control } = setup();
    await expect(control.createService(spec)).rejects.toThrow(ValidationError);
    await expect(control.createService(spec)).rejects.toThrow(message);
  });

  it('validates constraints with the given parser', async () => {
    const { control } = setup((c) => (c.includes('==') || c.includes('!=') ? undefined : 'expected == or !='));
    await expect(control.createService({ name: 'w', task: { image: 'x', placement: { constraints: ['node.role=manager'] } } }))
      .rejects.toThrow('invalid constraint "node.role=manager": expected == or !=');
  });

  it('refuses a name in use and a port published twice', async () => {
    const { control } = setup();
    await control.createService({ name: 'web', task: { image: 'x' }, endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] } });
    await expect(control.createService({ name: 'web', task: { image: 'x' } })).rejects.toThrow(/already in use/);
    await expect(control.createService({ name: 'api', task: { image: 'x' }, endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] } }))
      .rejects.toThrow(/port 8080\/tcp is already published by service web/);
  });

  it('updates with compare-and-set, keeps the previous spec and rolls back', async () => {
    const { control } = setup();
    const s = await control.createService({ name: 'web', task: { image: 'v1' } });
    const u = await control.updateService('web', s.meta.version, { ...s.spec, task: { ...s.spec.task, image: 'v2' } });
    expect(u.specVersion).toBe(2);
    expect(u.previousSpec?.task.image).toBe('v1');
    // A client that read version 1 and writes after someone else changed it is refused.
    await expect(control.updateService('web', s.meta.version, { ...s.spec, task: { ...s.spec.task, image: 'v3' } })).rejects.toThrow(ControlError);
    const r = await control.updateService('web', 0, undefined, { rollback: true });
    expect(r.spec.task.image).toBe('v1');
    expect(r.specVersion).toBe(3);
    // Scaling keeps the task template, so the running tasks stay.
    const scaled = await control.updateService('web', 0, { ...r.spec, mode: { replicated: { replicas: 4 } } });
    expect(scaled.specVersion).toBe(3);
    // --force changes nothing in the spec but still bumps the version.
    expect((await control.updateService('web', 0, scaled.spec, { force: true })).specVersion).toBe(4);
  });

  it('refuses to demote the last manager and to promote a node that is not ready', async () => {
    const { store, control } = setup();
    const node = (id: string, role: 'manager' | 'worker', state: 'ready' | 'down') => ({
      id, meta: { version: 0, createdAt: '', updatedAt: '' }, spec: { role, availability: 'active' as const, labels: {} },
      description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1, memoryBytes: 1, generic: {} }, engineLabels: {} },
      status: { state, message: '', addr: '' },
    });
    store.apply(store.appliedIndex + 1, { time: 't', actions: [
      { op: 'create', kind: 'node', object: node('m1', 'manager', 'ready') },
      { op: 'create', kind: 'node', object: node('w1', 'worker', 'down') },
    ] });
    await expect(control.updateNode('m1', 0, { role: 'worker' })).rejects.toThrow(/last manager/);
    await expect(control.updateNode('w1', 0, { role: 'manager' })).rejects.toThrow(/only a ready node can be promoted/);
    expect((await control.updateNode('w1', 0, { availability: 'drain' })).spec.availability).toBe('drain');
  });

  it('removes a service and marks its assigned tasks for removal', async () => {
    const { store, control } = setup();
    const s = await control.createService({ name: 'web', task: { image: 'x' } });
    store.apply(store.appliedIndex + 1, { time: 't', actions: [
      { op: 'create', kind: 'task', object: { id: 't1', meta: { version: 0, createdAt: '', updatedAt: '' }, serviceId: s.id, serviceName: 'web', slot: 1, nodeId: 'n1', spec: s.spec.task, specVersion: 1, desiredState: 'running', status: { state: 'running', timestamp: '', message: '', error: '', exitCode: 0, containerId: '' }, networks: [] } },
      { op: 'create', kind: 'task', object: { id: 't2', meta: { version: 0, createdAt: '', updatedAt: '' }, serviceId: s.id, serviceName: 'web', slot: 2, nodeId: '', spec: s.spec.task, specVersion: 1, desiredState: 'running', status: { state: 'pending', timestamp: '', message: '', error: '', exitCode: 0, containerId: '' }, networks: [] } },
    ] });
    await control.removeService('web');
    expect(store.get('service', s.id)).toBeUndefined();
    expect(store.get('task', 't1')!.desiredState).toBe('remove');
    expect(store.get('task', 't2')).toBeUndefined();
    await expect(control.getService('web')).rejects.toThrow('service web not found');
  });
});
