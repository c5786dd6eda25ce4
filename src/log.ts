import { pino, type Logger } from 'pino';

/** The process-wide logger: JSON lines on stderr, so stdout stays the command's output. */
export function createLogger(name: string, level = process.env.TSSWARM_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}

export type { Logger };
