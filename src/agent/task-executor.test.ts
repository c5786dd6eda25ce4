import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ContainerRecord, ContainerSpec, ExitRecord } from '../api/container.js';
import { TASK_LABEL, TaskExecutor, type Containers } from './task-executor.js';
import type { WireTask, WireTaskStatus } from './wire.js';

/** Containers in memory: enough to check the executor's decisions; the real ones are tested in test/. */
class FakeContainers implements Containers {
  records = new Map<string, ContainerRecord>();
  exits = new Map<string, (e: ExitRecord) => void>();
  waiters = new Map<string, Promise<ExitRecord>>();
  images = new Set(['busybox']);
  private n = 0;

  async prepareImage(ref: string) { if (!this.images.has(ref)) throw new Error(`No such image: ${ref}`); }
  async create(spec: ContainerSpec) {
    const id = `c${++this.n}`;
    const r = { id, name: spec.name, spec, state: { status: 'created', exitCode: 0, oomKilled: false, error: '' } } as unknown as ContainerRecord;
    this.records.set(id, r);
    this.waiters.set(id, new Promise((res) => this.exits.set(id, res)));
    return r;
  }
  async start(id: string) { this.get(id).state.status = 'running'; return this.get(id); }
  exit(id: string, exitCode: number, oomKilled = false) {
    Object.assign(this.get(id).state, { status: 'exited', exitCode, oomKilled });
    this.exits.get(id)!({ exitCode, oomKilled, signal: null, finishedAt: '' });
  }
  async stop(id: string) { this.exit(id, 143); return this.get(id); }
  async remove(id: string) { this.records.delete(id); }
  list() { return [...this.records.values()]; }
  get(id: string) {
    const r = this.records.get(id);
    if (!r) throw new Error(`No such container: ${id}`);
    return r;
  }
  wait(id: string) { return this.waiters.get(id)!; }
}

function task(id: string, over: Partial<WireTask> = {}): WireTask {
  return {
    id, serviceId: 'svc', serviceName: 'web', slot: 1, nodeId: 'n1', specVersion: 1, desiredState: 'running',
    spec: { image: 'busybox', command: [], args: ['sleep', '60'], env: [], workingDir: '', user: '', hostname: '', mounts: [], stopGracePeriodMs: 1000, stopSignal: '' },
    status: { state: 'assigned', timestamp: '', message: '', error: '', exitCode: 0, containerId: '' },
    ...over,
  };
}

function setup() {
  const containers = new FakeContainers();
  const reports: [string, WireTaskStatus][] = [];
  const exec = new TaskExecutor(containers, (id, s) => reports.push([id, s]), pino({ level: 'silent' }));
  const states = (id: string) => reports.filter(([t]) => t === id).map(([, s]) => s.state);
  return { containers, exec, reports, states };
}

describe('TaskExecutor', () => {
  it('walks an assigned task through to running, naming the container after the task', async () => {
    const { containers, exec, states } = setup();
    await exec.assign([{ task: task('t1'), action: 'update' }], true);
    await exec.settle();
    expect(states('t1')).toEqual(['accepted', 'preparing', 'starting', 'running']);
    const [c] = containers.list();
    expect(c!.name).toBe('web.1.t1');
    expect(c!.spec.labels[TASK_LABEL]).toBe('t1');
    expect(c!.spec.cmd).toEqual(['sleep', '60']);
  });

  it('reports failure with the exit code, and completion for exit 0', async () => {
    const { containers, exec, states, reports } = setup();
    await exec.assign([{ task: task('t1'), action: 'update' }, { task: task('t2', { slot: 2 }), action: 'update' }], true);
    await exec.settle();
    const [c1, c2] = containers.list();
    containers.exit(c1!.id, 3);
    containers.exit(c2!.id, 0);
    await new Promise((r) => setImmediate(r));
    expect(states('t1').at(-1)).toBe('failed');
    expect(reports.filter(([t]) => t === 't1').at(-1)![1]).toMatchObject({ exitCode: 3, error: 'task: non-zero exit (3)' });
    expect(states('t2').at(-1)).toBe('complete');
  });

  it('rejects a task whose image is missing, with a clear error', async () => {
    const { exec, reports } = setup();
    await exec.assign([{ task: task('t1', { spec: { ...task('t1').spec, image: 'nope' } }), action: 'update' }], true);
    await exec.settle();
    expect(reports.at(-1)![1]).toMatchObject({ state: 'rejected', error: expect.stringContaining('No such image: nope') });
  });

  it('stops a task whose desired state becomes shutdown, and removes it when the assignment goes', async () => {
    const { containers, exec, states } = setup();
    await exec.assign([{ task: task('t1'), action: 'update' }], true);
    await exec.settle();
    await exec.assign([{ task: task('t1', { desiredState: 'shutdown' }), action: 'update' }], false);
    await exec.settle();
    expect(states('t1').at(-1)).toBe('shutdown');
    expect(containers.list()).toHaveLength(1);
    await exec.assign([{ task: task('t1'), action: 'remove' }], false);
    await exec.settle();
    expect(containers.list()).toHaveLength(0);
  });

  it('adopts the container of an assigned task and removes those of tasks not assigned', async () => {
    const { containers, exec, states } = setup();
    const kept = await containers.create({ name: 'web.1.t1', labels: { [TASK_LABEL]: 't1' } } as unknown as ContainerSpec);
    await containers.start(kept.id);
    const stale = await containers.create({ name: 'web.2.old', labels: { [TASK_LABEL]: 'old' } } as unknown as ContainerSpec);
    await exec.assign([{ task: task('t1', { status: { ...task('t1').status, state: 'running' } }), action: 'update' }], true);
    await exec.settle();
    expect(containers.list().map((c) => c.id)).toEqual([kept.id]);
    expect(containers.records.has(stale.id)).toBe(false);
    expect(states('t1')).toEqual([]); // nothing new to say: it was running and still is
    containers.exit(kept.id, 1);
    await new Promise((r) => setImmediate(r));
    expect(states('t1')).toEqual(['failed']);
  });

  it('adopts a healthy task as healthy: it stays a backend while its check runs again after a daemon restart', async () => {
    const containers = new FakeContainers();
    const reports: [string, WireTaskStatus][] = [];
    const withHealth = Object.assign(containers, {
      check: async () => { throw new Error('no check within this test'); },
      imageHealthcheck: () => undefined,
    });
    const exec = new TaskExecutor(withHealth, (id, s) => reports.push([id, s]), pino({ level: 'silent' }));
    const kept = await containers.create({ name: 'web.1.t1', labels: { [TASK_LABEL]: 't1' } } as unknown as ContainerSpec);
    await containers.start(kept.id);
    const spec = { ...task('t1').spec, healthcheck: { test: ['CMD', 'true'], intervalMs: 60_000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 } };
    await exec.assign([{ task: task('t1', { spec, status: { ...task('t1').status, state: 'running', health: 'healthy' } }), action: 'update' }], true);
    await exec.settle();
    containers.exit(kept.id, 1);
    await new Promise((r) => setImmediate(r));
    // The exit's report carries the health the task was adopted with, not "starting".
    expect(reports.map(([, st]) => [st.state, st.health])).toEqual([['failed', 'healthy']]);
  });
});
