/** `tsswarm service logs`: the logs of a service's (or a task's) containers on every node, merged by time. */
import { Command } from 'commander';
import type { DaemonClient, SERVICES } from './client.js';
import { parseInteger } from './units.js';

type Connect = (service: keyof typeof SERVICES) => DaemonClient;

interface LogRecord { taskId: string; taskName: string; nodeName: string; stream: string; data: Buffer; time: string }

/** As docker prints it: `NAME.SLOT.TASKID@NODE    | line`. */
export function formatLogLine(r: LogRecord, o: { timestamps?: boolean; trunc: boolean }): string {
  const text = Buffer.from(r.data).toString('utf8');
  const prefix = `${r.taskName}.${o.trunc ? r.taskId.slice(0, 12) : r.taskId}@${r.nodeName}    | `;
  return `${o.timestamps ? `${r.time} ` : ''}${prefix}${text.endsWith('\n') ? text : `${text}\n`}`;
}

export function serviceLogsCommand(connect: Connect): Command {
  return new Command('logs').description('fetch the logs of a service or task')
    .option('-f, --follow', 'follow log output')
    .option('-n, --tail <n>', 'number of lines to show from the end of each task\'s logs (default: all)')
    .option('-t, --timestamps', 'show timestamps')
    .option('--no-trunc', 'do not truncate task ids')
    .argument('<service|task>')
    .action(async (ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; trunc: boolean }) => {
      const tail = o.tail === undefined || o.tail === 'all' ? -1 : parseInteger('--tail', o.tail, 0);
      let problems = 0;
      for await (const r of connect('control').stream<LogRecord>('ServiceLogs', { ref, follow: Boolean(o.follow), tail })) {
        if (r.stream === 'error') {
          problems++;
          process.stderr.write(`tsswarm: ${Buffer.from(r.data).toString('utf8')}\n`);
          continue;
        }
        (r.stream === 'stderr' ? process.stderr : process.stdout).write(formatLogLine(r, o));
      }
      if (problems) process.exitCode = 1;
    });
}
