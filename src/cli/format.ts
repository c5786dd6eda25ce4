/** Output in docker's shapes: aligned columns by default, JSON with --format json, ids with -q. */
import Table from 'cli-table3';

export type OutputFormat = 'table' | 'json';

/** Columns separated by three spaces, no borders: what `docker ps` prints. */
export function printTable(headers: string[], rows: string[][]): void {
  const table = new Table({
    head: headers,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
      'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '   ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  table.push(...rows);
  process.stdout.write(`${table.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** "running" -> "Running": how docker shows states in tables. */
export function capitalise(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

/**
 * docker's `rm` of several objects: each one removed is printed, each failure gets its own line on
 * stderr, and the command fails if any did.
 */
export async function removeEach(command: string, refs: string[], remove: (ref: string) => Promise<unknown>): Promise<void> {
  let failed = false;
  for (const ref of refs) {
    try {
      await remove(ref);
      process.stdout.write(`${ref}\n`);
    } catch (err) {
      failed = true;
      process.stderr.write(`tsswarm: ${command} ${ref}: ${(err as Error).message}\n`);
    }
  }
  if (failed) process.exitCode = 1;
}
