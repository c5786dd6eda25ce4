import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeObject, ServiceObject, ServiceSpec, TaskObject, UpdateConfig } from '../../api/objects.js';
import { ClusterStore, type Action } from '../state/store.js';
import { autoRebalanceActions, rebalanceActions } from './rebalance.js';
import { reconcile } from './reconcile.js';
import { restartDecision } from './restart.js';
import { isUp, planUpdate } from './updater.js';

/**
 * A simulated cluster on virtual time: the orchestrator, the updater, a scheduler that puts every
 * task on one node, and a worker, each acting when the test's schedule says so.
 */
class Sim {
  store = new ClusterStore();
  private index = 0;
  private ids = 0;
  now = Date.parse('2026-11-23T00:00:00.000Z');
  /** Images whose containers exit 1 as soon as they start. */
  failing = new Set<string>();
  /** Images whose containers run for a while (ms), then exit 1. */
  crashAfter = new Map<string, number>();
  /** Images no node has room for: the scheduler leaves their tasks pending, with its reason. */
  unplaceable = new Set<string>();

  iso(): string { return new Date(this.now).toISOString(); }

  apply(actions: Action[]): boolean {
    if (actions.length === 0) return false;
    const r = this.store.apply(++this.index, { actions, time: this.iso() });
    if (!r.ok) throw r.error;
    return true;
  }

  service(): ServiceObject { return this.store.get('service', 's')!; }
  tasks(): TaskObject[] { return this.store.tasksOfService('s'); }

  create(replicas: number | 'global', update: Partial<UpdateConfig>, restart: Partial<ServiceSpec['task']['restartPolicy']> = {}): void {
    const cfg: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 2000, maxFailureRatio: 0, order: 'stop-first', ...update };
    const spec = {
      name: 's', mode: replicas === 'global' ? { global: {} } : { replicated: { replicas } }, update: cfg, rollback: { ...cfg, failureAction: 'pause' },
      task: {
        image: 'v1', restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0, ...restart },
        placement: { constraints: [], preferences: [], maxReplicasPerNode: 0 },
        resources: { reservations: { nanoCpus: 0, memoryBytes: 0 }, limits: { nanoCpus: 0, memoryBytes: 0, pids: 0 } },
      },
      endpoint: { mode: 'vip', ports: [] },
    } as unknown as ServiceSpec;
    const node = (id: string): NodeObject => ({
      id, meta: { version: 0, createdAt: '', updatedAt: '' }, spec: { role: 'worker', availability: 'active', labels: {} },
      description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1e9, generic: {} }, engineLabels: {} },
      status: { state: 'ready', message: '', addr: '' },
    });
    this.apply([{ op: 'create', kind: 'node', object: node('n1') }, { op: 'create', kind: 'node', object: node('n2') }, { op: 'create', kind: 'service', object: { id: 's', meta: { version: 0, createdAt: '', updatedAt: '' }, spec, specVersion: 1, endpoint: { virtualIps: [], ports: [] } } }]);
  }

  /** What control.updateService does for a new image. */
  updateImage(image: string): void {
    const s = this.service();
    const next: ServiceObject = {
      ...s, spec: { ...s.spec, task: { ...s.spec.task, image } }, previousSpec: s.spec, specVersion: s.specVersion + 1,
      updateStatus: { state: 'updating', message: '', startedAt: this.iso(), completedAt: '', failures: 0, nextBatchAt: '' },
    };
    this.apply([{ op: 'update', kind: 'service', object: next, expectVersion: s.meta.version }]);
  }

  orchestrate(): boolean {
    return this.apply(reconcile(
      { services: this.store.list('service'), nodes: this.store.list('node'), tasksOfService: (id) => this.store.tasksOfService(id) },
      { now: this.iso(), newId: () => `t${++this.ids}`, taskHistoryLimit: 5 },
    ));
  }

  update(): boolean {
    return this.apply(planUpdate(this.service(), this.tasks(), this.store.list('node'), { now: this.iso(), newId: () => `u${++this.ids}` }).actions);
  }

  availability(nodeId: string, availability: NodeObject['spec']['availability']): void {
    const n = this.store.get('node', nodeId)!;
    this.apply([{ op: 'update', kind: 'node', object: { ...n, spec: { ...n.spec, availability } }, expectVersion: n.meta.version }]);
  }

  /** Puts every task on the first active node (enough for these tests). */
  schedule(): boolean {
    const target = this.store.list('node').sort((a, b) => a.id.localeCompare(b.id)).find((n) => n.spec.availability === 'active')!.id;
    const actions: Action[] = [];
    for (const t of this.tasks()) {
      if (t.desiredState === 'running' && this.unplaceable.has(t.spec.image)) {
        if (t.status.state === 'new') actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'pending', error: 'no suitable node (insufficient memory on 2 nodes)' } }, expectVersion: t.meta.version });
      } else if (t.desiredState === 'running' && (t.status.state === 'new' || t.status.state === 'pending')) {
        actions.push({ op: 'update', kind: 'task', object: { ...t, nodeId: t.nodeId || target, status: { ...t.status, state: 'assigned' } }, expectVersion: t.meta.version });
      } else if (t.desiredState !== 'running' && (t.status.state === 'new' || t.status.state === 'pending')) {
        actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'shutdown' } }, expectVersion: t.meta.version });
      }
    }
    return this.apply(actions);
  }

  /** The worker: starts assigned tasks (or fails them, for a failing image) and stops unwanted ones. */
  work(): boolean {
    const actions: Action[] = [];
    const at = this.iso();
    for (const t of this.tasks()) {
      const s = t.status;
      if (t.desiredState === 'running' && s.state === 'assigned') {
        const status: TaskObject['status'] = this.failing.has(t.spec.image)
          ? { ...s, state: 'failed', timestamp: at, startedAt: at, exitCode: 1, error: 'task: non-zero exit (1)' }
          : { ...s, state: 'running', timestamp: at, startedAt: at };
        actions.push({ op: 'update', kind: 'task', object: { ...t, status }, expectVersion: t.meta.version });
      } else if (s.state === 'running' && this.crashAfter.has(t.spec.image) && this.now - Date.parse(s.startedAt!) >= this.crashAfter.get(t.spec.image)!) {
        actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...s, state: 'failed', timestamp: at, exitCode: 1, error: 'task: non-zero exit (1)' } }, expectVersion: t.meta.version });
      } else if (t.desiredState !== 'running' && ['assigned', 'running'].includes(s.state)) {
        actions.push({ op: 'update', kind: 'task', object: { ...t, status: { ...s, state: 'shutdown', timestamp: at } }, expectVersion: t.meta.version });
      }
    }
    return this.apply(actions);
  }

  step(actor: number): void {
    [() => this.orchestrate(), () => this.update(), () => this.schedule(), () => this.work()][actor % 4]!();
    this.now += 250;
  }

  /** Everyone acts in turn until nothing changes for a while. */
  settle(maxSteps = 2000, check: () => void = () => {}): void {
    let quiet = 0;
    for (let i = 0; i < maxSteps && quiet < 40; i++) {
      const changed = [this.orchestrate(), this.update(), this.schedule(), this.work()].some(Boolean);
      check();
      quiet = changed ? 0 : quiet + 1;
      this.now += 250;
    }
  }

  upCount(): number {
    return this.tasks().filter((t) => t.desiredState === 'running' && isUp(t)).length;
  }

  runningImages(): string[] {
    return this.tasks().filter((t) => t.desiredState === 'running' && t.status.state === 'running').map((t) => t.spec.image).sort();
  }
}

describe('rolling update (pure planning against a simulated cluster)', () => {
  it('start-first never has fewer tasks up than replicas, in any interleaving, and completes', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 3 }), fc.array(fc.nat(3), { minLength: 50, maxLength: 300 }),
      (replicas, parallelism, schedule) => {
        const sim = new Sim();
        sim.create(replicas, { order: 'start-first', parallelism, monitorMs: 1000 });
        sim.settle();
        expect(sim.upCount()).toBe(replicas);
        sim.updateImage('v2');
        const check = () => expect(sim.upCount()).toBeGreaterThanOrEqual(replicas);
        for (const actor of schedule) { sim.step(actor); check(); }
        sim.settle(2000, check);
        expect(sim.service().updateStatus?.state).toBe('completed');
        expect(sim.runningImages()).toEqual(Array(replicas).fill('v2'));
      },
    ), { numRuns: 150 });
  });

  it('stop-first never has more than parallelism slots down, and completes', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 3 }), fc.array(fc.nat(3), { minLength: 50, maxLength: 300 }),
      (replicas, parallelism, schedule) => {
        const sim = new Sim();
        sim.create(replicas, { order: 'stop-first', parallelism, monitorMs: 1000 });
        sim.settle();
        sim.updateImage('v2');
        const check = () => expect(sim.upCount()).toBeGreaterThanOrEqual(replicas - parallelism);
        for (const actor of schedule) { sim.step(actor); check(); }
        sim.settle(2000, check);
        expect(sim.service().updateStatus?.state).toBe('completed');
        expect(sim.runningImages()).toEqual(Array(replicas).fill('v2'));
      },
    ), { numRuns: 150 });
  });

  it('batches wait for the delay after the last one came up; the update completes once the last task was monitored', () => {
    const sim = new Sim();
    sim.create(4, { parallelism: 2, delayMs: 10_000, monitorMs: 3000 });
    sim.settle();
    sim.updateImage('v2');
    let firstUpAt = 0;
    let secondBatchAt = 0;
    sim.settle(2000, () => {
      const v2 = sim.tasks().filter((t) => t.spec.image === 'v2');
      if (!firstUpAt && v2.filter(isUp).length === 2) firstUpAt = sim.now;
      if (v2.length > 2 && !secondBatchAt) secondBatchAt = sim.now;
      // Never more than one batch in flight.
      expect(v2.filter((t) => t.desiredState === 'running').length).toBeLessThanOrEqual(v2.length > 2 ? 4 : 2);
    });
    const s = sim.service();
    expect(s.updateStatus?.state).toBe('completed');
    expect(secondBatchAt - firstUpAt).toBeGreaterThanOrEqual(10_000);
    const lastStart = Math.max(...sim.tasks().filter((t) => t.spec.image === 'v2').map((t) => Date.parse(t.status.startedAt!)));
    expect(Date.parse(s.updateStatus!.completedAt)).toBeGreaterThanOrEqual(lastStart + 3000);
  });

  it('without a delay, a slot is taken up as soon as one has come up: the monitor period overlaps the next slots', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 3 }), (replicas, parallelism) => {
      const sim = new Sim();
      sim.create(replicas, { parallelism, monitorMs: 5000 });
      sim.settle();
      sim.updateImage('v2');
      const begun = sim.now;
      sim.settle(2000, () => {
        // At most `parallelism` slots are being replaced (not yet up) at any time.
        const notUp = sim.tasks().filter((t) => t.desiredState === 'running' && !isUp(t)).length;
        const stopping = sim.tasks().filter((t) => t.desiredState !== 'running' && t.status.state === 'running').length;
        expect(notUp + stopping).toBeLessThanOrEqual(parallelism);
      });
      const s = sim.service();
      expect(s.updateStatus?.state).toBe('completed');
      expect(sim.runningImages()).toEqual(Array(replicas).fill('v2'));
      // One monitor period in all, at the end, not one per batch.
      const took = Date.parse(s.updateStatus!.completedAt) - begun;
      expect(took).toBeGreaterThanOrEqual(5000);
      expect(took).toBeLessThan(5000 * 2);
    }), { numRuns: 40 });
  });

  it('a task that fails within its monitor period counts, even after later slots were taken up', () => {
    const sim = new Sim();
    sim.create(6, { parallelism: 1, monitorMs: 4000, failureAction: 'rollback' });
    sim.settle();
    sim.crashAfter.set('v2', 2000);
    sim.updateImage('v2');
    sim.settle();
    const s = sim.service();
    expect(s.updateStatus?.state).toBe('rollback_completed');
    expect(s.updateStatus?.message).toMatch(/update rolled back due to failure or early termination of task \S+: task: non-zero exit \(1\)/);
    // The first new task was still in its monitor period when the next slots were taken up.
    expect(new Set(sim.tasks().filter((t) => t.spec.image === 'v2').map((t) => t.slot)).size).toBeGreaterThan(1);
    expect(sim.runningImages()).toEqual(Array(6).fill('v1'));
  });

  it('a failing new image with failure action rollback rolls back and leaves the old version running', () => {
    const sim = new Sim();
    sim.create(3, { failureAction: 'rollback', parallelism: 1 });
    sim.settle();
    const before = sim.tasks().map((t) => t.id);
    sim.failing.add('v2');
    sim.updateImage('v2');
    sim.settle();
    const s = sim.service();
    expect(s.updateStatus?.state).toBe('rollback_completed');
    expect(s.updateStatus?.message).toMatch(/update rolled back due to failure or early termination of task \S+: task: non-zero exit \(1\)/);
    expect(s.spec.task.image).toBe('v1');
    expect(sim.runningImages()).toEqual(['v1', 'v1', 'v1']);
    // Only the slot the update reached was replaced: the others were adopted by the rolled-back version.
    const live = sim.tasks().filter((t) => t.desiredState === 'running');
    expect(live.filter((t) => before.includes(t.id))).toHaveLength(2);
    expect(live.every((t) => t.specVersion === s.specVersion)).toBe(true);
  });

  it('pauses with the reason when the failure action is pause, and tolerates failures under the ratio', () => {
    const sim = new Sim();
    sim.create(4, { failureAction: 'pause', parallelism: 1 });
    sim.settle();
    sim.failing.add('v2');
    sim.updateImage('v2');
    sim.settle();
    expect(sim.service().updateStatus?.state).toBe('paused');
    expect(sim.service().updateStatus?.message).toMatch(/^update paused due to failure or early termination of task/);
    // Three of four slots still run the old version: the update stopped at its first failure.
    expect(sim.runningImages().filter((i) => i === 'v1')).toHaveLength(3);

    // Ratio 0.5 of 4 slots: two failures are tolerated, the third pauses.
    const tolerant = new Sim();
    tolerant.create(4, { failureAction: 'pause', parallelism: 1, maxFailureRatio: 0.5 }, { condition: 'none' });
    tolerant.settle();
    tolerant.failing.add('v2');
    tolerant.updateImage('v2');
    tolerant.settle();
    expect(tolerant.service().updateStatus).toMatchObject({ state: 'paused', failures: 3 });
    expect(tolerant.runningImages()).toEqual(['v1']);

    const onward = new Sim();
    onward.create(2, { failureAction: 'continue', parallelism: 1 }, { condition: 'none' });
    onward.settle();
    onward.failing.add('v2');
    onward.updateImage('v2');
    onward.settle();
    expect(onward.service().updateStatus).toMatchObject({ state: 'completed', failures: 2 });
  });

  it('says which task it waits for when the scheduler cannot place a new task', () => {
    const sim = new Sim();
    sim.create(2, { parallelism: 1 });
    sim.settle();
    sim.unplaceable.add('big');
    sim.updateImage('big');
    sim.settle();
    expect(sim.service().updateStatus).toMatchObject({ state: 'updating', message: 'update in progress: waiting for task s.1: no suitable node (insufficient memory on 2 nodes)' });
    // Room appears: the update goes on, and the message with it.
    sim.unplaceable.clear();
    sim.settle();
    expect(sim.service().updateStatus).toMatchObject({ state: 'completed', message: 'update completed' });
  });

  it('resumes from the store alone: a planner that starts mid-update makes the same progress', () => {
    const sim = new Sim();
    sim.create(5, { parallelism: 2, order: 'start-first', monitorMs: 500 });
    sim.settle();
    sim.updateImage('v2');
    for (let i = 0; i < 30; i++) sim.step(i);
    // A "new leader": only the store crosses over.
    const successor = new Sim();
    successor.store.restore(sim.store.snapshot());
    (successor as unknown as { index: number }).index = sim.store.appliedIndex;
    successor.now = sim.now;
    successor.settle();
    expect(successor.service().updateStatus?.state).toBe('completed');
    expect(successor.runningImages()).toEqual(Array(5).fill('v2'));
  });
});

describe('global services', () => {
  it('update node by node, in either order, in any interleaving', () => {
    fc.assert(fc.property(fc.constantFrom('start-first' as const, 'stop-first' as const), fc.array(fc.nat(3), { minLength: 20, maxLength: 200 }), (order, schedule) => {
      const sim = new Sim();
      sim.create('global', { order, parallelism: 1, monitorMs: 500 });
      sim.settle();
      expect(sim.upCount()).toBe(2);
      sim.updateImage('v2');
      const check = () => expect(sim.upCount()).toBeGreaterThanOrEqual(order === 'start-first' ? 2 : 1);
      for (const actor of schedule) { sim.step(actor); check(); }
      sim.settle(2000, check);
      expect(sim.service().updateStatus?.state).toBe('completed');
      const live = sim.tasks().filter((t) => t.desiredState === 'running' && t.status.state === 'running');
      expect(live.map((t) => `${t.nodeId}:${t.spec.image}`).sort()).toEqual(['n1:v2', 'n2:v2']);
    }), { numRuns: 60 });
  });
});

describe('drain and rebalance', () => {
  it('a start-first service moves off a drained node without running short', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), fc.array(fc.nat(3), { minLength: 20, maxLength: 200 }), (replicas, schedule) => {
      const sim = new Sim();
      sim.create(replicas, { order: 'start-first' });
      sim.settle();
      sim.availability('n1', 'drain');
      const check = () => expect(sim.upCount()).toBeGreaterThanOrEqual(replicas);
      for (const actor of schedule) { sim.step(actor); check(); }
      sim.settle(2000, check);
      const live = sim.tasks().filter((t) => t.desiredState === 'running');
      expect(live.map((t) => t.nodeId)).toEqual(Array(replicas).fill('n2'));
    }), { numRuns: 100 });
  });

  it('rebalance spreads tasks onto a node that came back, start-first', () => {
    const sim = new Sim();
    sim.create(4, {});
    sim.availability('n1', 'drain');
    sim.settle();
    expect(sim.tasks().filter((t) => t.desiredState === 'running').map((t) => t.nodeId)).toEqual(Array(4).fill('n2'));
    sim.availability('n1', 'active');
    const view = { nodes: sim.store.list('node'), tasksOfNode: (id: string) => sim.store.tasksOfNode(id), tasksOfService: (id: string) => sim.store.tasksOfService(id) };
    const moves = rebalanceActions(sim.service(), view, { now: sim.iso(), newId: () => `r${Math.random()}` });
    expect(moves).toHaveLength(2);
    sim.apply(moves);
    sim.settle(2000, () => expect(sim.upCount()).toBeGreaterThanOrEqual(4));
    const on = sim.tasks().filter((t) => t.desiredState === 'running').map((t) => t.nodeId).sort();
    expect(on).toEqual(['n1', 'n1', 'n2', 'n2']);
  });

  it('automatic rebalance moves only steady services, then says it has settled', () => {
    const sim = new Sim();
    sim.create(4, {});
    sim.availability('n1', 'drain');
    sim.settle();
    sim.availability('n1', 'active');
    const view = { nodes: sim.store.list('node'), tasksOfNode: (id: string) => sim.store.tasksOfNode(id), tasksOfService: (id: string) => sim.store.tasksOfService(id) };
    const ctx = { now: sim.iso(), newId: () => `a${Math.random()}` };
    // Mid-update, nothing moves, and it has not settled.
    const updating = { ...sim.service(), updateStatus: { state: 'updating' as const, message: '', startedAt: '', completedAt: '', failures: 0, nextBatchAt: '' } };
    expect(autoRebalanceActions([updating], view, ctx)).toEqual({ actions: [], settled: false });
    const first = autoRebalanceActions([sim.service()], view, ctx);
    expect(first.actions).toHaveLength(2);
    expect(first.settled).toBe(false);
    sim.apply(first.actions);
    // While the moves are under way (two tasks in a slot), it waits.
    expect(autoRebalanceActions([sim.service()], view, ctx).settled).toBe(false);
    sim.settle(2000, () => expect(sim.upCount()).toBeGreaterThanOrEqual(4));
    expect(autoRebalanceActions([sim.service()], view, ctx)).toEqual({ actions: [], settled: true });
  });
});

describe('restart policy', () => {
  const service = (p: Partial<ServiceSpec['task']['restartPolicy']>) => ({
    specVersion: 1, spec: { task: { restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0, ...p } } },
  }) as unknown as ServiceObject;
  const ended = (at: string, restarts: string[] = [], state: TaskObject['status']['state'] = 'failed') =>
    ({ specVersion: 1, restarts, status: { state, timestamp: at } }) as unknown as TaskObject;

  it('waits for the delay, counted from when the task ended', () => {
    expect(restartDecision(service({ delayMs: 5000 }), ended('2026-01-01T00:00:00Z'), '2026-01-01T00:00:03Z'))
      .toEqual({ restart: false, retryAt: Date.parse('2026-01-01T00:00:05Z') });
    expect(restartDecision(service({ delayMs: 5000 }), ended('2026-01-01T00:00:00Z'), '2026-01-01T00:00:05Z'))
      .toEqual({ restart: true, restarts: ['2026-01-01T00:00:05Z'] });
  });

  it('stops after max attempts within the window, and counts again once they leave it', () => {
    const two = ['2026-01-01T00:00:10Z', '2026-01-01T00:00:20Z'];
    expect(restartDecision(service({ maxAttempts: 2 }), ended('2026-01-01T00:00:30Z', two), '2026-01-01T00:01:00Z')).toEqual({ restart: false });
    expect(restartDecision(service({ maxAttempts: 2, windowMs: 45_000 }), ended('2026-01-01T00:00:30Z', two), '2026-01-01T00:01:00Z'))
      .toEqual({ restart: true, restarts: ['2026-01-01T00:00:20Z', '2026-01-01T00:01:00Z'] });
  });

  it('replaces a task lost with its node at once, at no cost in attempts', () => {
    expect(restartDecision(service({ delayMs: 5000, maxAttempts: 1 }), ended('2026-01-01T00:00:00Z', ['x'], 'orphaned'), '2026-01-01T00:00:01Z'))
      .toEqual({ restart: true, restarts: ['x'] });
  });

  it('a crashing task in the orchestrator: restarted after the delay, then no more after max attempts', () => {
    const sim = new Sim();
    sim.create(1, {}, { delayMs: 3000, maxAttempts: 2 });
    sim.failing.add('v1');
    const starts: number[] = [];
    sim.settle(400, () => {
      for (const t of sim.tasks()) if (t.status.state === 'failed' && !starts.includes(Date.parse(t.status.timestamp))) starts.push(Date.parse(t.status.timestamp));
    });
    expect(starts).toHaveLength(3); // the first run and two restarts
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(3000);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(3000);
    expect(sim.tasks().filter((t) => t.desiredState === 'running')).toHaveLength(1);
  });
});
