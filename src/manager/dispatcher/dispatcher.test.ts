import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Dispatcher } from './dispatcher.js';
import { attachmentTask } from '../allocator/attachment.js';
import { recordRemovedNodes } from '../state/removed-nodes.js';
import type { NodeObject } from '../../api/objects.js';
import { ClusterStore } from '../state/store.js';

function setup(now: { t: number }) {
  const store = new ClusterStore();
  const log = { propose: async (p: any) => store.apply(store.appliedIndex + 1, p), barrier: async () => {}, isLeader: () => true };
  const node = (id: string): NodeObject => ({
    id, meta: { version: 0, createdAt: '', updatedAt: '' }, spec: { role: 'worker', availability: 'active', labels: {} },
    description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1e9, generic: {} }, engineLabels: {} },
    status: { state: 'ready', message: '', addr: '' },
  });
  store.apply(1, { time: new Date(0).toISOString(), actions: [{ op: 'create', kind: 'node', object: node('old') }] });
  const d = new Dispatcher({ store, log, logger: pino({ level: 'silent' }), heartbeatPeriodMs: 1000, missedHeartbeats: 3, managers: () => [], now: () => now.t });
  return { store, d, node };
}

describe('Dispatcher heartbeats', () => {
  it('gives nodes from before it started a full timeout to reconnect, then marks them down', async () => {
    const now = { t: 1_000_000 };
    const { store, d } = setup(now);
    expect(await d.checkHeartbeats()).toEqual([]);
    expect(store.get('node', 'old')!.status.state).toBe('ready');
    now.t += 3500;
    await d.checkHeartbeats();
    expect(store.get('node', 'old')!.status.state).toBe('down');
    d.stop();
  });

  it('keeps a node with a live session and marks it down after missed heartbeats', async () => {
    const now = { t: 1_000_000 };
    const { store, d, node } = setup(now);
    const sent: unknown[] = [];
    const s = await d.openSession('w1', 'worker', node('w1').description, '10.0.0.2', (m) => sent.push(m));
    expect(sent).toHaveLength(1);
    now.t += 2000;
    d.heartbeat('w1', s.id);
    now.t += 2000;
    await d.checkHeartbeats();
    expect(store.get('node', 'w1')!.status.state).toBe('ready');
    now.t += 4000;
    await d.checkHeartbeats();
    expect(store.get('node', 'w1')!.status.state).toBe('down');
    expect(() => d.heartbeat('w1', s.id)).toThrow(/unknown/);
    d.stop();
  });
});

describe('Dispatcher network attachments', () => {
  const network = {
    id: 'net1', meta: { version: 0, createdAt: '', updatedAt: '' }, vni: 4097,
    spec: { name: 'att', driver: 'overlay' as const, subnet: '10.0.1.0/24', gateway: '10.0.1.1', attachable: true, labels: {}, ingress: false },
  };
  const req = { network: 'att', containerId: 'c'.repeat(64), containerName: 'solo' };

  it('answers once the leader gave the attachment an address, and gives a retry the same one', async () => {
    const now = { t: 1_000_000 };
    const { store, d, node } = setup(now);
    store.apply(2, { time: '', actions: [{ op: 'create', kind: 'network', object: network }] });
    const s = await d.openSession('w1', 'worker', node('w1').description, '10.0.0.2', () => {});
    // What the leader's pass does: an address, then assigned.
    const unwatch = store.watch(() => {
      const t = store.tasksOfNode('w1').find((x) => x.attachment && x.status.state === 'new');
      if (t) void Promise.resolve().then(() => store.apply(store.appliedIndex + 1, { time: '', actions: [{ op: 'update', kind: 'task', object: { ...t, networks: [{ networkId: 'net1', addresses: ['10.0.1.9'] }], status: { ...t.status, state: 'assigned' } }, expectVersion: t.meta.version }] }));
    });
    const first = await d.attachNetwork('w1', s.id, req);
    expect(first.networks).toEqual([{ networkId: 'net1', addresses: ['10.0.1.9'] }]);
    expect((await d.attachNetwork('w1', s.id, req)).id).toBe(first.id);
    unwatch();
    await d.detachNetwork('w1', s.id, first.id);
    expect(store.get('task', first.id)).toBeUndefined();
    d.stop();
  });

  it('leaves nothing behind when no address comes, and refuses another node\'s attachment', async () => {
    const now = { t: 1_000_000 };
    const { store, d, node } = setup(now);
    store.apply(2, { time: '', actions: [{ op: 'create', kind: 'network', object: network }] });
    const s = await d.openSession('w1', 'worker', node('w1').description, '10.0.0.2', () => {});
    await expect(d.attachNetwork('w1', s.id, req, 50)).rejects.toThrow('cannot attach container solo to network att: no address within 50 ms');
    expect(store.list('task')).toEqual([]);
    await expect(d.attachNetwork('w1', s.id, { ...req, network: 'nope' })).rejects.toThrow('network nope not found');
    await expect(d.attachNetwork('w1', 'bad-session', req)).rejects.toThrow(/unknown/);
    const s2 = await d.openSession('w2', 'worker', node('w2').description, '10.0.0.3', () => {});
    store.apply(store.appliedIndex + 1, { time: '', actions: [{ op: 'create', kind: 'task', object: { ...attachmentTask('t9', 'w1', network, req, ''), status: { state: 'assigned', timestamp: '', message: '', error: '', exitCode: 0, containerId: '' } } }] });
    await expect(d.detachNetwork('w2', s2.id, 't9')).rejects.toThrow('task t9 is not a network attachment of node w2');
    d.stop();
  });
});

describe('Dispatcher and removed nodes', () => {
  it('refuses the session of a node removed from the swarm, in one line, and registers nothing', async () => {
    const now = { t: 1_000_000 };
    const { store, d, node } = setup(now);
    const cluster = {
      id: 'cluster', meta: { version: 0, createdAt: '', updatedAt: '' }, swarmId: 's',
      spec: { taskHistoryLimit: 5, heartbeatPeriodMs: 1000, certExpiryMs: 0 }, rootCA: { certPem: '', keyPem: '' }, joinSecrets: { worker: '', manager: '' },
    };
    store.apply(2, { time: '', actions: [{ op: 'create', kind: 'cluster', object: cluster }] });
    store.apply(3, { time: '', actions: recordRemovedNodes(store.list('cluster')[0], ['gone']) });
    await expect(d.openSession('gone', 'manager', node('gone').description, '10.0.0.9', () => {}))
      .rejects.toThrow('node gone was removed from the swarm: run "swarm leave --force" on it, then join again');
    expect(store.get('node', 'gone')).toBeUndefined();
    await d.openSession('w1', 'worker', node('w1').description, '10.0.0.2', () => {});
    expect(store.get('node', 'w1')?.status.state).toBe('ready');
    d.stop();
  });
});
