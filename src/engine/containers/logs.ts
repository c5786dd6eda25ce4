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

/** At most this much of the file is read (and held) per batch, however long the log. */
const BATCH_BYTES = 1024 * 1024;
const READ_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Where the last `lines` lines of the file start, found by reading backwards from its end: `tail`
 * of a long log costs what the tail costs, not the whole file.
 */
async function tailOffset(fh: FileHandle, size: number, lines: number): Promise<number> {
  if (lines <= 0) return size;
  const chunk = Buffer.allocUnsafe(64 * 1024);
  // The file's last byte ends the last line; it does not start one.
  let seen = 0;
  let end = size - 1;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await fh.read(chunk, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (chunk[i] === NEWLINE && ++seen === lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

/**
 * readLogs, in batches (never empty) of at most about BATCH_BYTES of the file each: for callers
 * that merge lines, and so that a long log is never held whole. The file is split into lines as
 * bytes, so a character that straddles two reads stays whole.
 */
export async function* readLogBatches(path: string, opts: LogReadOptions): AsyncGenerator<LogEntry[]> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !opts.follow) return;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let offset = fh && opts.tail >= 0 ? await tailOffset(fh, (await fh.stat()).size, opts.tail) : 0;
  let pending: Buffer = Buffer.alloc(0);
  /** The next batch of whole lines; `more` when the read stopped at the batch size rather than at the end. */
  const readBatch = async (): Promise<{ entries: LogEntry[]; more: boolean }> => {
    if (!fh) {
      try { fh = await open(path, 'r'); } catch { return { entries: [], more: false }; }
    }
    // Chunks as they are read, not one batch-sized buffer per reader: a node may have many followers.
    const chunks: Buffer[] = pending.length ? [pending] : [];
    let filled = 0;
    let chunk = Buffer.allocUnsafe(READ_BYTES);
    while (filled < BATCH_BYTES) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      filled += bytesRead;
      chunks.push(chunk.subarray(0, bytesRead));
      chunk = Buffer.allocUnsafe(READ_BYTES);
    }
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const entries: LogEntry[] = [];
    let lineStart = 0;
    for (let nl = data.indexOf(NEWLINE); nl >= 0; nl = data.indexOf(NEWLINE, lineStart)) {
      const entry = parseLine(data.toString('utf8', lineStart, nl));
      lineStart = nl + 1;
      if (entry) entries.push(entry);
    }
    pending = Buffer.from(data.subarray(lineStart)); // a copy: the rest of the chunk is garbage now
    return { entries, more: filled >= BATCH_BYTES };
  };
  /** Everything that is in the file now, batch by batch. */
  async function* drain(): AsyncGenerator<LogEntry[]> {
    for (;;) {
      const { entries, more } = await readBatch();
      if (entries.length) yield entries;
      if (!more) return;
    }
  }

  try {
    yield* drain();
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
        yield* drain();
        if (finished) {
          yield* drain();
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
