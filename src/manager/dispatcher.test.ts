import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Dispatcher } from './dispatcher.js';
import type { NodeObject } from './objects.js';
import { ClusterStore } from './store/store.js';

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
