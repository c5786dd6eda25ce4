/** What every scenario shares: options, the cluster's lifetime, and a few swarm probes. */
import { createCluster, type Cluster, type ClusterOptions, type Host } from '../harness.js';
import { checkServiceHistory, type HistoryVerdict, type ServiceOp } from '../service-model.js';
import type { Workload } from '../workload.js';

export interface ScenarioOptions {
  hosts?: number;
  seed?: number;
  durationS?: number;
  log?: (line: string) => void;
}

export type ScenarioResult = Record<string, unknown> & { scenario: string; pass: boolean };

export interface Scenario {
  description: string;
  /** part of `all` */
  inAll: boolean;
  run(opts: ScenarioOptions): Promise<ScenarioResult>;
}

/** Builds a cluster, runs `body`, and always destroys the cluster; on failure, shows the daemons' last words. */
export async function withCluster<T>(opts: ScenarioOptions, cluster: ClusterOptions, body: (c: Cluster) => Promise<T>): Promise<T> {
  const log = opts.log ?? (() => {});
  const c = await createCluster({ hosts: opts.hosts ?? 6, managers: 3, log, ...cluster });
  try {
    return await body(c);
  } catch (err) {
    for (const h of c.hosts) log(`--- last log lines of ${h.name} (${h.state})\n${h.logTail(6)}`);
    throw err;
  } finally {
    await c.destroy();
    log(`run ${c.runId} torn down`);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Running tasks of a service as a manager reports them (over gRPC: cheap to poll). */
export async function runningTasks(via: Host, service: string): Promise<{ id: string; node: string; slot: number; containerId: string; image: string }[]> {
  const [{ tasks }, { nodes }] = await Promise.all([
    via.control<{ tasks: any[] }>('ListTasks', { serviceId: service, desiredState: 'running' }),
    via.control<{ nodes: any[] }>('ListNodes', {}),
  ]);
  const host = new Map(nodes.map((n) => [n.id, n.description.hostname as string]));
  return tasks.filter((t) => t.status.state === 'running').map((t) => ({ id: t.id, node: host.get(t.nodeId) ?? t.nodeId, slot: t.slot, containerId: t.status.containerId, image: t.spec?.image ?? '' }));
}

/** Containers really running on a host (from its own daemon, not the managers' records). */
export async function containersOn(h: Host): Promise<string[]> {
  const r = await h.cli(['container', 'ps', '-q', '--no-trunc'], 10_000);
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

/** Waits until `service` has `replicas` running tasks, each backed by a container on its node. */
export async function waitConverged(c: Cluster, via: Host, service: string, replicas: number, timeoutMs = 60_000): Promise<{ id: string; node: string }[]> {
  return c.waitFor(`${service} to run ${replicas} tasks`, async () => {
    const tasks = await runningTasks(via, service);
    return tasks.length === replicas ? tasks : undefined;
  }, timeoutMs, 100);
}

/**
 * The checker must not pass vacuously: into the real history it adds one read, after everything,
 * of a value that an acknowledged later write replaced (a stale read). It must be caught.
 */
export function checkerCatchesStaleRead(history: ServiceOp[]): boolean | undefined {
  const end = Math.max(...history.map((o) => (o.ret === Infinity ? o.call : o.ret)));
  for (const later of [...history].reverse()) {
    if (later.input.op !== 'update' || !later.output?.ok) continue;
    const name = later.input.name;
    const earlier = history.find((o) => o.input.name === name && (o.input.op === 'create' || o.input.op === 'update') && o.output?.ok && 'version' in o.output && o.ret < later.call);
    if (!earlier || !earlier.output?.ok || !('version' in earlier.output)) continue;
    const token = (earlier.input as { token: string }).token;
    const stale: ServiceOp = { input: { op: 'read', name }, output: { ok: true, version: earlier.output.version, token }, call: end + 1, ret: end + 2 };
    return !checkServiceHistory([...history.filter((o) => o.input.name === name), stale], { minimize: false }).linearizable;
  }
  return undefined;
}

export function verdictFields(v: HistoryVerdict, log: (l: string) => void, history?: ServiceOp[]): Record<string, unknown> {
  const selfTest = history ? checkerCatchesStaleRead(history) : undefined;
  if (selfTest !== undefined) log(`checker self-test: a stale read injected after the real history ${selfTest ? 'is caught' : 'is NOT caught'}`);
  log(`history: ${v.ops} operations (${v.indeterminate} indeterminate); linearizable: ${v.linearizable}; lost acknowledged writes: ${v.lostAcknowledgedWrites}; version anomalies: ${v.versionAnomalies.length}`);
  if (v.failing) log(`NOT LINEARIZABLE: minimal failing history of service ${v.failing.service}:\n  ${v.failing.history.join('\n  ')}`);
  for (const a of v.versionAnomalies.slice(0, 5)) log(`version anomaly: ${a}`);
  return {
    operations: v.ops, indeterminate: v.indeterminate, linearizability_violations: v.violations,
    lost_acknowledged_writes: v.lostAcknowledgedWrites, version_anomalies: v.versionAnomalies.length,
    ...(selfTest !== undefined ? { checker_catches_injected_stale_read: selfTest } : {}),
    ...(v.failing ? { failing_history: v.failing } : {}),
  };
}

/** Stops the workload, reads every key once more through a healthy manager, and checks the history. */
export async function finishAndCheck(w: Workload, via: Host, keys: string[], log: (l: string) => void): Promise<HistoryVerdict> {
  await w.stop();
  for (const k of keys) await w.op(via, { op: 'read', name: k });
  w.close();
  const v = checkServiceHistory(w.history);
  if (w.errors.size) log(`indeterminate results by kind: ${JSON.stringify(Object.fromEntries(w.errors))}`);
  return v;
}

export const TARGETS = { failover_to_ack_s: 2, worker_loss_to_running_s: 10, lost_acknowledged_writes: 0, linearizability_violations: 0 };
