/**
 * The node's side of `service logs`: the TaskLogs service on its cluster listener streams the
 * json-file logs of the containers of the tasks a manager asks for. Only managers may call it (the
 * daemon guards the path with a role check on the caller's certificate), and only containers of
 * swarm tasks (found by their task label) are served.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import type { ContainerManager } from '../engine/containers/manager.js';
import { TASK_LABEL } from './task-executor.js';

export const TASK_LOGS_PATH = '/tsswarm.swarm.v1.TaskLogs/';
export const taskLogsService = () => serviceClient('control.proto', 'tsswarm.swarm.v1.TaskLogs').service;

export interface TaskLogRecord { taskId: string; stream: 'stdout' | 'stderr'; data: Buffer; time: string }

type LogSource = Pick<ContainerManager, 'list' | 'logs'>;

export function taskLogsHandlers(containers: () => Partial<LogSource> | undefined, logger: Logger): grpc.UntypedServiceImplementation {
  return {
    Logs: (call: grpc.ServerWritableStream<{ taskIds: string[]; follow: boolean; tail: number }, TaskLogRecord>) => {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      call.on('close', () => ac.abort());
      const { taskIds, follow, tail } = call.request;
      const source = containers();
      if (!source?.list || !source.logs) {
        call.emit('error', { code: 12 /* UNIMPLEMENTED */, details: 'this node cannot read container logs' });
        return;
      }
      const { list, logs } = source as LogSource;
      const byTask = new Map<string, string>();
      for (const c of list(true)) {
        const id = c.spec.labels[TASK_LABEL];
        if (id) byTask.set(id, c.id);
      }
      // Each task's container is read on its own; with follow they interleave as lines come.
      const reads = (taskIds ?? []).filter((id) => byTask.has(id)).map(async (taskId) => {
        for await (const e of logs(byTask.get(taskId)!, { follow, tail: tail ?? -1, signal: ac.signal })) {
          if (ac.signal.aborted) return;
          call.write({ taskId, stream: e.stream, data: e.data, time: e.time });
        }
      });
      Promise.all(reads).then(() => call.end(), (err) => {
        logger.warn({ err: (err as Error).message }, 'reading task logs failed');
        call.emit('error', { code: 13 /* INTERNAL */, details: `reading task logs failed: ${(err as Error).message}` });
      });
    },
  };
}
