/**
 * Runs the tasks the dispatcher assigns to this node as containers, and reports each state change:
 * ACCEPTED, PREPARING, STARTING, RUNNING, then COMPLETE, FAILED, SHUTDOWN or REJECTED. Containers
 * carry their task's id as a label, so that after a daemon restart the executor adopts what still
 * runs and removes what is no longer assigned.
 */
import type { Logger } from 'pino';
import type { ContainerManager } from '../engine/containers/manager.js';
import type { ContainerRecord, ContainerSpec } from '../api/container.js';
import type { RegistryAuth } from '../api/objects.js';
import type { NetworkDriver } from '../network/types.js';
import { effectiveHealthcheck, HealthMonitor, type Health, type ImageHealthcheck } from './health.js';
import { isFinished, stateRank, type WireAssignment, type WireTask, type WireTaskState, type WireTaskStatus } from './wire.js';

export const TASK_LABEL = 'tsswarm.task.id';
export const SERVICE_LABEL = 'tsswarm.service.id';

export type Containers = Pick<ContainerManager, 'create' | 'start' | 'stop' | 'remove' | 'list' | 'get' | 'wait'> & {
  /**
   * Makes the task's image ready on this node: at hand already, or pulled from its registry (with the
   * service's credentials when it has some). Rejects with the registry's one line ("No such image: …").
   */
  prepareImage(ref: string, auth?: RegistryAuth): Promise<void>;
  /** For health checks (health.ts): a check's command run in the container, and the image's HEALTHCHECK. */
  check?: ContainerManager['check'];
  /** For `service logs`: a managers-only log service on the node's cluster listener (agent/task-logs.ts). */
  logs?: ContainerManager['logs'];
  imageHealthcheck?(ref: string): ImageHealthcheck | undefined;
};

export type StatusReporter = (taskId: string, status: WireTaskStatus) => void;

interface Running {
  task: WireTask;
  containerId: string;
  /** What we last reported: states only move forward. */
  state: WireTaskState;
  lastStatus?: WireTaskStatus;
  /** Serialises lifecycle steps of one task. */
  chain: Promise<void>;
  /** When the container started, and its health when a check applies: reported with every status. */
  startedAt?: string;
  health?: Health;
  monitor?: HealthMonitor;
}

export function containerName(t: WireTask): string {
  return `${t.serviceName || t.serviceId}.${t.slot > 0 ? t.slot : t.nodeId}.${t.id}`;
}

export function containerSpecOf(t: WireTask): Partial<ContainerSpec> {
  const s = t.spec;
  return {
    name: containerName(t),
    image: s.image,
    entrypoint: s.command,
    entrypointSet: s.command.length > 0,
    cmd: s.args,
    env: s.env,
    workingDir: s.workingDir,
    user: s.user,
    // As Docker: a task's hostname defaults to the short id (of the task here, known before the container).
    hostname: s.hostname || t.id.slice(0, 12),
    mounts: s.mounts,
    memoryBytes: s.resources?.limits?.memoryBytes ?? 0,
    nanoCpus: s.resources?.limits?.nanoCpus ?? 0,
    pidsLimit: s.resources?.limits?.pids ?? 0,
    restart: { name: 'no', maxRetries: 0 }, // the orchestrator restarts tasks, not the node
    network: 'none',
    autoRemove: false,
    readOnly: false,
    stopSignal: s.stopSignal,
    stopTimeout: Math.ceil((s.stopGracePeriodMs || 10_000) / 1000),
    labels: { [TASK_LABEL]: t.id, [SERVICE_LABEL]: t.serviceId },
  };
}

export class TaskExecutor {
  private readonly tasks = new Map<string, Running>();

  constructor(
    private readonly containers: Containers,
    private readonly report: StatusReporter,
    private readonly log: Logger,
    /** Joins tasks to overlay networks; without it, a task on a network is rejected. */
    private readonly network?: Pick<NetworkDriver, 'attach' | 'detach'>,
  ) {}

  /** Applies a session message: the full set replaces what we had; otherwise changes only. */
  async assign(assignments: WireAssignment[], full: boolean): Promise<void> {
    const wanted = new Set<string>();
    for (const a of assignments) {
      if (a.action === 'remove') {
        this.forget(a.task.id, true);
        continue;
      }
      wanted.add(a.task.id);
      this.update(a.task);
    }
    if (full) {
      for (const id of [...this.tasks.keys()]) if (!wanted.has(id)) this.forget(id, true);
      // Containers of tasks we never heard of this session (e.g. after a restart): remove them.
      for (const c of this.containers.list(true)) {
        const id = c.spec.labels[TASK_LABEL];
        if (id && !wanted.has(id) && !this.tasks.has(id)) {
          this.log.info({ task: id, container: c.id }, 'removing the container of a task no longer assigned here');
          await this.containers.remove(c.id, true).catch(() => {});
          await this.detach(id);
        }
      }
    }
  }

  /** Waits for every queued lifecycle step (for tests and orderly shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.tasks.values()].map((r) => r.chain));
  }

  private update(task: WireTask): void {
    let r = this.tasks.get(task.id);
    if (!r) {
      const existing = this.findContainer(task.id);
      r = { task, containerId: existing?.id ?? '', state: task.status.state, chain: Promise.resolve() };
      this.tasks.set(task.id, r);
      if (existing) this.adopt(r, existing);
    }
    r.task = task;
    const run = r;
    if (task.desiredState === 'running') {
      if (stateRank(run.state) < stateRank('accepted')) this.enqueue(run, () => this.start(run));
    } else {
      this.enqueue(run, () => this.shutdown(run, task.desiredState === 'remove'));
    }
  }

  private forget(taskId: string, removeContainer: boolean): void {
    const r = this.tasks.get(taskId);
    if (!r) return;
    this.enqueue(r, async () => {
      await this.shutdown(r, removeContainer);
      this.tasks.delete(taskId);
    });
  }

  private enqueue(r: Running, step: () => Promise<void>): void {
    r.chain = r.chain.then(step).catch((err) => {
      this.log.warn({ task: r.task.id, err: (err as Error).message }, 'task step failed');
    });
  }

  private findContainer(taskId: string): ContainerRecord | undefined {
    return this.containers.list(true).find((c) => c.spec.labels[TASK_LABEL] === taskId);
  }

  /** A container found for a task after a restart: report its state and follow its exit. */
  private adopt(r: Running, c: ContainerRecord): void {
    if (c.state.status === 'running' || c.state.status === 'paused') {
      r.state = 'running';
      r.startedAt = c.state.startedAt || undefined;
      // The health the managers last heard of carries over a daemon restart: a healthy task stays a
      // backend of its VIP and the routing mesh while it is checked again (a failing check still
      // turns it unhealthy after its retries).
      this.watchHealth(r, Date.parse(c.state.startedAt) || Date.now(), r.task.status.health === 'healthy' ? 'healthy' : 'starting');
      this.watchExit(r, c.id);
    } else if (c.state.status === 'exited' || c.state.status === 'dead') {
      this.finish(r, c.state.exitCode, c.state.oomKilled, c.state.error);
    }
  }

  private setState(r: Running, state: WireTaskState, message: string, extra: Partial<WireTaskStatus> = {}): void {
    if (stateRank(state) < stateRank(r.state) || (isFinished(r.state) && state !== r.state)) return;
    r.state = state;
    if (isFinished(state)) r.monitor?.stop();
    r.lastStatus = {
      state, timestamp: new Date().toISOString(), message, error: extra.error ?? '', exitCode: extra.exitCode ?? 0,
      containerId: extra.containerId ?? r.containerId, health: r.health ?? '', startedAt: r.startedAt ?? '',
    };
    this.report(r.task.id, r.lastStatus);
  }

  private async start(r: Running): Promise<void> {
    const t = r.task;
    if (t.desiredState !== 'running' || stateRank(r.state) >= stateRank('accepted')) return;
    this.setState(r, 'accepted', 'accepted');
    this.setState(r, 'preparing', 'preparing');
    try {
      await this.containers.prepareImage(t.spec.image, t.spec.registryAuth ?? undefined);
    } catch (err) {
      this.setState(r, 'rejected', 'rejected', { error: (err as Error).message });
      return;
    }
    const spec = containerSpecOf(t);
    const attachments = (t.networks ?? []).map((a) => ({ networkId: a.networkId, ip: a.addresses[0]?.split('/')[0] ?? '' }));
    if (attachments.length > 0) {
      if (!this.network) {
        this.setState(r, 'rejected', 'rejected', { error: 'this node cannot join overlay networks (its daemon runs without a network driver)' });
        return;
      }
      try {
        spec.sandbox = await this.network.attach(t.id, spec.hostname!, attachments);
      } catch (err) {
        this.setState(r, 'rejected', 'rejected', { error: `cannot attach to the task's networks: ${(err as Error).message}` });
        await this.detach(t.id);
        return;
      }
    }
    let c: ContainerRecord;
    try {
      c = await this.containers.create(spec as ContainerSpec);
    } catch (err) {
      this.setState(r, 'rejected', 'rejected', { error: `cannot create container: ${(err as Error).message}` });
      return;
    }
    r.containerId = c.id;
    this.setState(r, 'starting', 'starting');
    try {
      await this.containers.start(c.id);
    } catch (err) {
      this.setState(r, 'failed', 'starting failed', { error: (err as Error).message, exitCode: 128 });
      return;
    }
    r.startedAt = new Date().toISOString();
    this.watchHealth(r, Date.now());
    this.setState(r, 'running', 'started');
    this.watchExit(r, c.id);
  }

  /** Starts the task's health check, if one applies; an unhealthy task fails (and is replaced). */
  private watchHealth(r: Running, startedAtMs: number, initial: Health = 'starting'): void {
    r.monitor?.stop();
    const check = this.containers.check;
    const config = effectiveHealthcheck(r.task.spec.healthcheck, this.containers.imageHealthcheck?.(r.task.spec.image));
    if (!config || !check) return;
    r.health = initial;
    const containerId = r.containerId;
    r.monitor = new HealthMonitor(config, (cmd, timeoutMs) => check(containerId, cmd, timeoutMs), (health) => {
      if (isFinished(r.state)) return;
      r.health = health;
      if (health !== 'unhealthy') {
        this.setState(r, 'running', `health: ${health}`);
        return;
      }
      this.setState(r, 'failed', 'unhealthy container', { error: 'task: container unhealthy', exitCode: 0 });
      this.enqueue(r, async () => {
        const c = this.containers.get(containerId);
        if (c.state.status === 'running' || c.state.status === 'paused') await this.containers.stop(containerId, Math.ceil((r.task.spec.stopGracePeriodMs || 10_000) / 1000));
      });
    }, startedAtMs, initial);
    r.monitor.start();
  }

  private watchExit(r: Running, containerId: string): void {
    void this.containers.wait(containerId).then((exit) => {
      // A stop we asked for is reported by shutdown(); only unexpected exits are reported here.
      if (r.task.desiredState === 'running') this.finish(r, exit.exitCode, exit.oomKilled, exit.error ?? '');
    }).catch(() => {});
  }

  private finish(r: Running, exitCode: number, oomKilled: boolean, error: string): void {
    if (exitCode === 0 && !oomKilled) {
      this.setState(r, 'complete', 'finished', { exitCode });
    } else {
      const why = oomKilled ? 'task: killed by the kernel: out of memory (OOM)' : `task: non-zero exit (${exitCode})${error ? `: ${error}` : ''}`;
      this.setState(r, 'failed', 'started', { exitCode, error: why });
    }
    // The manager frees a finished task's addresses at once: its namespace must not keep them.
    void this.detach(r.task.id);
  }

  private async detach(taskId: string): Promise<void> {
    await this.network?.detach(taskId).catch((err) => this.log.warn({ task: taskId, err: (err as Error).message }, 'leaving the task\'s networks failed'));
  }

  private async shutdown(r: Running, removeContainer: boolean): Promise<void> {
    if (r.containerId) {
      try {
        const c = this.containers.get(r.containerId);
        if (c.state.status === 'running' || c.state.status === 'paused') {
          await this.containers.stop(r.containerId, Math.ceil((r.task.spec.stopGracePeriodMs || 10_000) / 1000));
        }
        const exit = this.containers.get(r.containerId).state;
        if (!isFinished(r.state)) this.setState(r, 'shutdown', 'shutdown', { exitCode: exit.exitCode });
        if (removeContainer) await this.containers.remove(r.containerId, true);
      } catch (err) {
        if (!/No such container/.test((err as Error).message)) throw err;
      }
    }
    await this.detach(r.task.id);
    if (!isFinished(r.state)) this.setState(r, 'shutdown', 'shutdown');
    // The manager deletes a task marked for removal once it hears a final state: say it again.
    else if (r.task.desiredState === 'remove') this.report(r.task.id, r.lastStatus ?? r.task.status);
  }
}
