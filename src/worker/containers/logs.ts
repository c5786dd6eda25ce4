/**
 * Reads the json-file logs the shim writes ({"log","stream","time"} per line), once or following
 * new lines until the container stops.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  data: Buffer;
  time: string;
}

export interface LogReadOptions {
  follow: boolean;
  /** Last N lines of what is already there; < 0 for all. */
  tail: number;
  /** With follow: resolves when no more lines will come (the container exited). */
  finished?: Promise<unknown>;
  signal?: AbortSignal;
}

function parseLine(line: string): LogEntry | undefined {
  try {
    const obj = JSON.parse(line) as { log?: string; stream?: string; time?: string };
    if (typeof obj.log !== 'string') return undefined;
    return { stream: obj.stream === 'stderr' ? 'stderr' : 'stdout', data: Buffer.from(obj.log), time: obj.time ?? '' };
  } catch {
    return undefined; // a torn last line from a crash: skip it rather than fail the whole read
  }
}

export async function* readLogs(path: string, opts: LogReadOptions): AsyncGenerator<LogEntry> {
  for await (const batch of readLogBatches(path, opts)) yield* batch;
}

/** readLogs, in the batches that each read of the file gave (never empty): for callers that merge lines. */
export async function* readLogBatches(path: string, opts: LogReadOptions): AsyncGenerator<LogEntry[]> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !opts.follow) return;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let offset = 0;
  let pending = '';
  const readNew = async (): Promise<LogEntry[]> => {
    if (!fh) {
      try { fh = await open(path, 'r'); } catch { return []; }
    }
    const out: LogEntry[] = [];
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      pending += buf.toString('utf8', 0, bytesRead);
    }
    // One pass and one slice: slicing the rest after every line made a large read quadratic.
    let lineStart = 0;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', lineStart)) {
      const entry = parseLine(pending.slice(lineStart, nl));
      lineStart = nl + 1;
      if (entry) out.push(entry);
    }
    pending = pending.slice(lineStart);
    return out;
  };

  try {
    const existing = await readNew();
    const start = opts.tail >= 0 ? Math.max(0, existing.length - opts.tail) : 0;
    if (start < existing.length) yield existing.slice(start);
    if (!opts.follow) return;

    let finished = false;
    // A wake that comes while we are reading must not be lost: it is remembered until the next wait.
    let woken = false;
    let wake: () => void = () => { woken = true; };
    void opts.finished?.then(() => { finished = true; wake(); });
    let watcher: FSWatcher | undefined;
    const arm = () => {
      if (watcher) return;
      try { watcher = watch(path, () => wake()); } catch { /* file not there yet: poll */ }
    };
    const onAbort = () => { finished = true; wake(); };
    opts.signal?.addEventListener('abort', onAbort);
    try {
      while (!opts.signal?.aborted) {
        arm();
        const fresh = await readNew();
        if (fresh.length) yield fresh;
        if (finished) {
          const last = await readNew();
          if (last.length) yield last;
          return;
        }
        // inotify wakes us on writes; the timeout covers a log file that is replaced or created late.
        if (!woken) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 250);
            wake = () => { clearTimeout(timer); resolve(); };
          });
        }
        woken = false;
        wake = () => { woken = true; };
      }
    } finally {
      watcher?.close();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    await fh?.close();
  }
}
