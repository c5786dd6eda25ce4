/**
 * `service logs` on the manager: finds the tasks of a service (or one task), asks each node that
 * ran them for their containers' logs over the TaskLogs service on its cluster listener (mutual
 * TLS; the node serves managers only), and merges the lines by time. Without follow, every line is
 * collected and sorted; with follow, lines are held briefly in a reorder buffer so that lines from
 * different nodes still come out in time order.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { CHANNEL_OPTIONS } from '../ca/tls-credentials.js';
import { type ControlService } from './controlapi/control.js';
import { ControlError } from '../api/errors.js';
import type { NodeObject, TaskObject } from '../api/objects.js';
import type { ClusterStore } from './state/store.js';

export interface LogRecord {
  taskId: string;
  taskName: string;
  nodeId: string;
  nodeName: string;
  stream: string;
  data: Buffer;
  time: string;
}

export interface LogsRequest { ref: string; follow: boolean; tail: number }

/** How long following lines wait for earlier lines from slower nodes. */
const REORDER_MS = 250;

/** RFC 3339 times with any number of fractional digits, as a sortable key. */
export function timeKey(time: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(time);
  if (!m) return time;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}${m[3]}`;
}

/** Merges lines by time; stable for equal times (a node's own order is kept). */
export function mergeByTime<T extends { time: string }>(records: T[]): T[] {
  return records.map((r, i) => ({ r, i, k: timeKey(r.time) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.i - b.i)).map((x) => x.r);
}

function taskName(t: TaskObject): string {
  return `${t.serviceName}.${t.slot > 0 ? t.slot : t.nodeId}`;
}

/** The tasks whose logs `ref` names: a service's (by id, name or prefix) or one task's (id or prefix). */
export async function tasksForLogs(control: ControlService, store: ClusterStore, ref: string): Promise<{ serviceId?: string; tasks: TaskObject[] }> {
  try {
    const service = await control.getService(ref);
    return { serviceId: service.id, tasks: store.tasksOfService(service.id).filter(hasContainer) };
  } catch (err) {
    if (!(err instanceof ControlError) || err.code !== 'not-found') throw err;
  }
  const tasks = store.list('task').filter((t) => t.id === ref || t.id.startsWith(ref));
  if (tasks.length > 1) throw new ControlError(`task ${ref} is ambiguous (${tasks.length} matches)`, 'invalid');
  if (tasks.length === 0) throw new ControlError(`no such service or task: ${ref}`, 'not-found');
  return { tasks: tasks.filter((t) => t.nodeId) };
}

function hasContainer(t: TaskObject): boolean {
  return Boolean(t.nodeId && t.status.containerId);
}

type TaskLogsClient = grpc.Client & { Logs(req: object): grpc.ClientReadableStream<{ taskId: string; stream: string; data: Buffer; time: string }> };

export interface LogsDeps {
  control: ControlService;
  store: ClusterStore;
  credentials: grpc.ChannelCredentials;
  logger: Logger;
}

/**
 * Streams the merged logs to `write`; resolves when done (without follow) or when `signal`
 * aborts. Nodes that cannot be reached are reported through `warn` and skipped.
 */
export async function streamServiceLogs(deps: LogsDeps, req: LogsRequest, write: (r: LogRecord) => void, warn: (msg: string) => void, signal: AbortSignal): Promise<void> {
  const { serviceId, tasks } = await tasksForLogs(deps.control, deps.store, req.ref);
  const byNode = new Map<string, TaskObject[]>();
  for (const t of tasks) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t]);
  const tasksById = new Map(tasks.map((t) => [t.id, t]));
  const Ctor = serviceClient('control.proto', 'tsswarm.swarm.v1.TaskLogs');

  const collected: LogRecord[] = [];
  let buffer: LogRecord[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  const flush = () => {
    flushTimer = undefined;
    const cutoff = timeKey(new Date(Date.now() - REORDER_MS).toISOString());
    const sorted = mergeByTime(buffer);
    const ready = sorted.filter((r) => timeKey(r.time) <= cutoff);
    buffer = sorted.filter((r) => timeKey(r.time) > cutoff);
    for (const r of ready) write(r);
    if (buffer.length) flushTimer = setTimeout(flush, REORDER_MS);
  };
  const emit = (r: LogRecord) => {
    if (!req.follow) { collected.push(r); return; }
    buffer.push(r);
    flushTimer ??= setTimeout(flush, REORDER_MS);
  };

  const read = (nodeId: string, nodeTasks: TaskObject[], tail: number) => new Promise<void>((resolve) => {
    const node: NodeObject | undefined = deps.store.get('node', nodeId);
    const name = node?.description.hostname ?? nodeId;
    const addr = node?.advertiseAddr || node?.managerStatus?.addr;
    if (!addr) { warn(`node ${name} has no address: its tasks' logs are not available`); resolve(); return; }
    const client = new Ctor(addr, deps.credentials, CHANNEL_OPTIONS) as unknown as TaskLogsClient;
    const call = client.Logs({ taskIds: nodeTasks.map((t) => t.id), follow: req.follow, tail });
    const done = () => { client.close(); resolve(); };
    signal.addEventListener('abort', () => call.cancel());
    call.on('data', (m) => {
      const t = tasksById.get(m.taskId);
      if (!t) return;
      emit({ taskId: t.id, taskName: taskName(t), nodeId, nodeName: name, stream: m.stream, data: m.data, time: m.time });
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) warn(`logs from node ${name} unavailable: ${err.details || err.message}`);
      done();
    });
    call.on('end', done);
  });
  const reads = [...byNode].map(([nodeId, nodeTasks]) => read(nodeId, nodeTasks, req.tail));
  if (req.follow && serviceId) {
    // Following a service: tasks that start later (replacements, scaling) are followed too, from
    // their first line, until the client goes away.
    const unwatch = deps.store.watch((events) => {
      for (const e of events) {
        if (e.kind !== 'task' || e.op === 'delete') continue;
        const t = e.object as TaskObject;
        if (t.serviceId !== serviceId || tasksById.has(t.id) || !hasContainer(t)) continue;
        tasksById.set(t.id, t);
        void read(t.nodeId, [t], -1);
      }
    });
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve())));
    unwatch();
  }
  await Promise.all(reads);
  if (!req.follow) {
    for (const r of mergeByTime(collected)) write(r);
    return;
  }
  clearTimeout(flushTimer);
  for (const r of mergeByTime(buffer)) write(r);
}

/** The ControlAPI ServiceLogs handler. */
export function serviceLogsHandler(
  deps: () => LogsDeps, toStatus: (err: unknown) => Partial<grpc.StatusObject>,
): grpc.handleServerStreamingCall<{ ref: string; follow: boolean; tail: number }, object> {
  return (call) => {
    let d: LogsDeps;
    try { d = deps(); } catch (err) { call.emit('error', toStatus(err)); return; }
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    const { ref, follow, tail } = call.request;
    // Problems with one node go to the client as "error" records: the other nodes' logs still come.
    const warn = (message: string) => call.write({ taskId: '', taskName: '', nodeId: '', nodeName: '', stream: 'error', data: Buffer.from(message), time: new Date().toISOString() });
    streamServiceLogs(d, { ref, follow, tail: tail ?? -1 }, (r) => call.write(r), warn, ac.signal)
      .then(() => call.end(), (err) => call.emit('error', toStatus(err)));
  };
}
