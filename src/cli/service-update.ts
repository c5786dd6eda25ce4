/**
 * `tsswarm service update|rollback`, the lifecycle flags that `service create` shares with them
 * (update and rollback config, restart policy, health check, stop grace), and the progress display
 * of a rolling update: slot by slot as for create, with the reason when the update pauses or rolls
 * back. The update is compare-and-set on the service's version: when someone else wrote in
 * between (the rolling updater itself records its progress there), the flags are applied again
 * to the fresh spec.
 */
import { Command, Option } from 'commander';
import type { ServiceObject, ServiceSpec, TaskObject, UpdateConfig } from '../api/objects.js';
import type { DaemonClient, SERVICES } from './client.js';
import { ProgressPrinter, progressOf, renderProgress } from './progress.js';
import { parseBytes, parseDurationMs, parseInteger, parseNanoCpus, UsageError } from './units.js';

type Connect = (service: keyof typeof SERVICES) => DaemonClient;
const collect = (v: string, prev: string[]) => [...prev, v];
const FAILED_PRECONDITION = 9;
/** How long an update may wait for a task the scheduler cannot place before the CLI says so. */
const STUCK_GRACE_MS = 3000;

/** Flags shared by create and update (commander's camelCase names). */
export interface LifecycleFlags {
  updateParallelism?: string; updateDelay?: string; updateFailureAction?: string; updateMonitor?: string;
  updateMaxFailureRatio?: string; updateOrder?: string;
  rollbackParallelism?: string; rollbackDelay?: string; rollbackFailureAction?: string; rollbackMonitor?: string;
  rollbackMaxFailureRatio?: string; rollbackOrder?: string;
  restartCondition?: string; restartDelay?: string; restartMaxAttempts?: string; restartWindow?: string;
  healthCmd?: string; healthInterval?: string; healthTimeout?: string; healthRetries?: string; healthStartPeriod?: string;
  healthcheck?: boolean; // --no-healthcheck sets it false
  stopGracePeriod?: string; stopSignal?: string;
}

/** Adds the update/rollback/health flags (and --restart-window) to a create or update command. */
export function addLifecycleOptions(cmd: Command): Command {
  for (const kind of ['update', 'rollback'] as const) {
    cmd.option(`--${kind}-parallelism <n>`, `maximum number of tasks ${kind}d simultaneously (0 for all at once)`)
      .option(`--${kind}-delay <duration>`, `delay between ${kind} batches`)
      .addOption(new Option(`--${kind}-failure-action <action>`, `action on ${kind} failure`).choices(kind === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue']))
      .option(`--${kind}-monitor <duration>`, `time to watch each new task for failure`)
      .option(`--${kind}-max-failure-ratio <ratio>`, `failure rate to tolerate during the ${kind}`)
      .addOption(new Option(`--${kind}-order <order>`, `${kind} order`).choices(['start-first', 'stop-first']));
  }
  return cmd
    .option('--restart-window <duration>', 'window used to count restart attempts')
    .option('--health-cmd <command>', 'command run in the container to check its health (a shell command)')
    .option('--health-interval <duration>', 'time between health checks (default 30s)')
    .option('--health-timeout <duration>', 'maximum time a check may take (default 30s)')
    .option('--health-retries <n>', 'consecutive failures that make the task unhealthy (default 3)')
    .option('--health-start-period <duration>', 'start period during which failures do not count')
    .option('--no-healthcheck', 'disable any health check, the image\'s included');
}

function ratio(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d*\.?\d+$/.test(text.trim()) || n < 0 || n > 1) throw new UsageError(`invalid value "${text}" for ${flag}: expected a number between 0 and 1`);
  return n;
}

function updateConfig(kind: 'update' | 'rollback', base: UpdateConfig | undefined, o: LifecycleFlags): UpdateConfig | undefined {
  const f = (name: string) => (o as Record<string, string | undefined>)[`${kind}${name}`];
  const set = ['Parallelism', 'Delay', 'FailureAction', 'Monitor', 'MaxFailureRatio', 'Order'].filter((n) => f(n) !== undefined);
  if (set.length === 0) return base;
  const d: UpdateConfig = base ?? { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, order: 'stop-first' };
  return {
    parallelism: f('Parallelism') !== undefined ? parseInteger(`--${kind}-parallelism`, f('Parallelism')!, 0) : d.parallelism,
    delayMs: f('Delay') !== undefined ? parseDurationMs(`--${kind}-delay`, f('Delay')!) : d.delayMs,
    failureAction: (f('FailureAction') ?? d.failureAction) as UpdateConfig['failureAction'],
    monitorMs: f('Monitor') !== undefined ? parseDurationMs(`--${kind}-monitor`, f('Monitor')!) : d.monitorMs,
    maxFailureRatio: f('MaxFailureRatio') !== undefined ? ratio(`--${kind}-max-failure-ratio`, f('MaxFailureRatio')!) : d.maxFailureRatio,
    order: (f('Order') ?? d.order) as UpdateConfig['order'],
  };
}

/**
 * The spec with the lifecycle flags applied: what create sends and what update changes. Fields
 * whose flag is absent keep their value.
 */
export function withLifecycleFlags<S extends Partial<ServiceSpec>>(spec: S, o: LifecycleFlags): S {
  const task = { ...(spec.task ?? {}) } as ServiceSpec['task'];
  const rp = task.restartPolicy ?? { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 };
  task.restartPolicy = {
    condition: (o.restartCondition ?? rp.condition) as ServiceSpec['task']['restartPolicy']['condition'],
    delayMs: o.restartDelay !== undefined ? parseDurationMs('--restart-delay', o.restartDelay) : rp.delayMs,
    maxAttempts: o.restartMaxAttempts !== undefined ? parseInteger('--restart-max-attempts', o.restartMaxAttempts, 0) : rp.maxAttempts,
    windowMs: o.restartWindow !== undefined ? parseDurationMs('--restart-window', o.restartWindow) : rp.windowMs,
  };
  if (o.stopGracePeriod !== undefined) task.stopGracePeriodMs = parseDurationMs('--stop-grace-period', o.stopGracePeriod);
  if (o.stopSignal !== undefined) task.stopSignal = o.stopSignal;
  const hc = task.healthcheck && task.healthcheck.test?.length ? task.healthcheck : undefined;
  const healthFlags = [o.healthCmd, o.healthInterval, o.healthTimeout, o.healthRetries, o.healthStartPeriod].some((v) => v !== undefined);
  if (o.healthcheck === false) {
    if (healthFlags) throw new UsageError('--no-healthcheck conflicts with --health-* options');
    task.healthcheck = { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 };
  } else if (healthFlags) {
    const base = hc && hc.test[0] !== 'NONE' ? hc : { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 };
    const test = o.healthCmd !== undefined ? ['CMD-SHELL', o.healthCmd] : base.test;
    // Without a command of its own, the knobs tune the image's HEALTHCHECK.
    task.healthcheck = {
      test: test.length ? test : [],
      intervalMs: o.healthInterval !== undefined ? parseDurationMs('--health-interval', o.healthInterval) : base.intervalMs,
      timeoutMs: o.healthTimeout !== undefined ? parseDurationMs('--health-timeout', o.healthTimeout) : base.timeoutMs,
      retries: o.healthRetries !== undefined ? parseInteger('--health-retries', o.healthRetries, 0) : base.retries,
      startPeriodMs: o.healthStartPeriod !== undefined ? parseDurationMs('--health-start-period', o.healthStartPeriod) : base.startPeriodMs,
    };
    if (task.healthcheck.test.length === 0) throw new UsageError('--health-* options need --health-cmd (tuning an image\'s HEALTHCHECK is not supported)');
  }
  const update = updateConfig('update', spec.update, o);
  const rollback = updateConfig('rollback', spec.rollback, o);
  return { ...spec, task, ...(update ? { update } : {}), ...(rollback ? { rollback } : {}) };
}

/** Splits --args as a shell would for plain words and quotes (no expansions). */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let word = '';
  let last = -1;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const piece = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] ?? m[3]!;
    if (last === m.index) word += piece;
    else { if (last >= 0) out.push(word); word = piece; }
    last = re.lastIndex;
  }
  if (last >= 0) out.push(word);
  return out;
}

interface UpdateFlags extends LifecycleFlags {
  resolveImage?: boolean; withRegistryAuth?: boolean;
  image?: string; envAdd: string[]; envRm: string[]; args?: string; reserveCpu?: string; reserveMemory?: string;
  limitCpu?: string; limitMemory?: string; limitPids?: string; constraintAdd: string[]; constraintRm: string[];
  replicas?: string; force?: boolean; detach?: boolean; rollback?: boolean; rebalance?: boolean;
}

/** `service update` flags applied to the current spec. */
export function applyUpdateFlags(current: ServiceSpec, o: UpdateFlags): ServiceSpec {
  const spec = withLifecycleFlags(structuredClone(current), o);
  const t = spec.task;
  if (o.image !== undefined) t.image = o.image;
  if (o.envRm.length || o.envAdd.length) {
    const key = (e: string) => e.split('=', 1)[0]!;
    const drop = new Set([...o.envRm.map(key), ...o.envAdd.map(key)]);
    t.env = [...t.env.filter((e) => !drop.has(key(e))), ...o.envAdd];
  }
  if (o.args !== undefined) t.args = splitArgs(o.args);
  const r = t.resources;
  if (o.reserveCpu !== undefined) r.reservations.nanoCpus = parseNanoCpus('--reserve-cpu', o.reserveCpu);
  if (o.reserveMemory !== undefined) r.reservations.memoryBytes = parseBytes('--reserve-memory', o.reserveMemory);
  if (o.limitCpu !== undefined) r.limits.nanoCpus = parseNanoCpus('--limit-cpu', o.limitCpu);
  if (o.limitMemory !== undefined) r.limits.memoryBytes = parseBytes('--limit-memory', o.limitMemory);
  if (o.limitPids !== undefined) r.limits.pids = parseInteger('--limit-pids', o.limitPids, 0);
  if (o.constraintRm.length || o.constraintAdd.length) {
    const keep = t.placement.constraints.filter((c) => !o.constraintRm.includes(c));
    t.placement.constraints = [...keep, ...o.constraintAdd.filter((c) => !keep.includes(c))];
  }
  if (o.replicas !== undefined) {
    if (!('replicated' in spec.mode && spec.mode.replicated)) throw new UsageError('--replicas can only be used with replicated mode');
    spec.mode = { replicated: { replicas: parseInteger('--replicas', o.replicas, 0) } };
  }
  return spec;
}

/** The control API's answer when the service moved since it was read. */
function isVersionConflict(err: unknown): boolean {
  return (err as { code?: number }).code === FAILED_PRECONDITION && /out of sequence/.test((err as Error).message);
}

/**
 * Watches an update (or rollback) until it completes, pauses, or rolls back; prints progress as
 * for create. `expectRollback`: a rollback was asked for, so rolling back is success.
 */
export async function waitUpdated(connect: Connect, ref: string, expectRollback: boolean, verifyMs = 1000): Promise<void> {
  const control = connect('control');
  const printer = new ProgressPrinter();
  const withBars = Boolean(process.stdout.isTTY);
  let saidRollback = false;
  let convergedAt = 0;
  let stuckSince = 0;
  for (;;) {
    const service = await control.call<ServiceObject>('GetService', { id: ref });
    const { tasks } = await control.call<{ tasks: TaskObject[] }>('ListTasks', { serviceId: service.id });
    const view = progressOf(service, tasks, Infinity);
    printer.draw(renderProgress(view, withBars));
    const st = service.updateStatus;
    const state = st?.state ?? '';
    if (state === 'paused' || state === 'rollback_paused') throw new UsageError(`service ${service.spec.name}: ${st!.message}`);
    if (state.startsWith('rollback') && !expectRollback && !saidRollback) {
      printer.say(`rollback: ${st!.message}`);
      saidRollback = true;
    }
    // The updater names a new task the scheduler cannot place: say so rather than wait forever.
    const stuck = /^(update|rollback) in progress: (waiting for task .*)$/.exec(st?.message ?? '');
    if (stuck) {
      stuckSince ||= Date.now();
      if (Date.now() - stuckSince >= STUCK_GRACE_MS) {
        throw new UsageError(`service ${service.spec.name}: ${stuck[1]} cannot progress: ${stuck[2]} (it goes on once the task can be placed; see tsswarm service inspect)`);
      }
    } else {
      stuckSince = 0;
    }
    const finished = state === '' || state === 'completed' || state === 'rollback_completed';
    if (finished && view.running === view.total) {
      if (!convergedAt) { convergedAt = Date.now(); printer.say(`verify: Waiting ${verifyMs / 1000} seconds to verify that tasks are stable...`); }
      if (Date.now() - convergedAt >= verifyMs) {
        if (state === 'rollback_completed' && !expectRollback) throw new UsageError(`service ${service.spec.name} was rolled back: ${st!.message}`);
        printer.say(expectRollback ? 'rollback: rollback completed' : 'verify: Service converged');
        return;
      }
    } else {
      convergedAt = 0;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

export function serviceUpdateCommands(connect: Connect): Command[] {
  const update = addLifecycleOptions(new Command('update').description('update a service (a rolling update when its tasks change)')
    .option('--image <image>', 'service image')
    .option('--env-add <KEY=VALUE>', 'add or update an environment variable', collect, [])
    .option('--env-rm <KEY>', 'remove an environment variable', collect, [])
    .option('--args <command>', 'service command args')
    .option('--reserve-cpu <cpus>', 'reserve CPUs').option('--reserve-memory <bytes>', 'reserve memory')
    .option('--limit-cpu <cpus>', 'limit CPUs').option('--limit-memory <bytes>', 'limit memory').option('--limit-pids <n>', 'limit processes')
    .option('--constraint-add <expr>', 'add a placement constraint', collect, [])
    .option('--constraint-rm <expr>', 'remove a placement constraint', collect, [])
    .option('--replicas <n>', 'number of tasks')
    .addOption(new Option('--restart-condition <c>', 'none, on-failure or any').choices(['none', 'on-failure', 'any']))
    .option('--restart-delay <duration>', 'delay between restarts').option('--restart-max-attempts <n>', 'maximum restarts')
    .option('--stop-grace-period <duration>', 'time to wait before killing a task').option('--stop-signal <signal>', 'signal to stop a task')
    .option('--force', 'replace every task even if nothing changed')
    .option('--rollback', 'roll back to the previous spec')
    .option('--rebalance', 'move tasks to even out the nodes (e.g. after nodes joined)')
    .option('--no-resolve-image', 'keep the image\'s tag as given instead of pinning the digest the registry has now')
    .option('--with-registry-auth', 'send this manager\'s registry credentials (tsswarm login) to the nodes that run the tasks')
    .option('-d, --detach', 'exit at once instead of waiting for the update')
    .argument('<service>'))
    .action(async (ref: string, o: UpdateFlags) => {
      const control = connect('control');
      if (o.rollback) { await rollback(connect, ref, Boolean(o.detach)); return; }
      let updated: ServiceObject | undefined;
      for (let attempt = 0; !updated; attempt++) {
        const current = await control.call<ServiceObject>('GetService', { id: ref });
        const spec = applyUpdateFlags(current.spec, o);
        try {
          updated = await control.call<ServiceObject>('UpdateService', {
            id: current.id, version: current.meta.version, spec, force: Boolean(o.force), rebalance: Boolean(o.rebalance),
            noResolveImage: o.resolveImage === false, withRegistryAuth: Boolean(o.withRegistryAuth),
          });
        } catch (err) {
          if (!isVersionConflict(err) || attempt >= 5) throw err;
        }
      }
      process.stdout.write(`${updated.spec.name}\n`);
      if (!o.detach) await waitUpdated(connect, updated.id, false);
    });

  const rollbackCmd = new Command('rollback').description('revert a service to its previous spec')
    .option('-d, --detach', 'exit at once instead of waiting for the rollback')
    .argument('<service>')
    .action(async (ref: string, o: { detach?: boolean }) => rollback(connect, ref, Boolean(o.detach)));
  return [update, rollbackCmd];
}

async function rollback(connect: Connect, ref: string, detach: boolean): Promise<void> {
  const control = connect('control');
  const current = await control.call<ServiceObject>('GetService', { id: ref });
  const updated = await control.call<ServiceObject>('UpdateService', { id: current.id, version: current.meta.version, rollback: true });
  process.stdout.write(`${updated.spec.name}\n`);
  if (!detach) await waitUpdated(connect, updated.id, true);
}
