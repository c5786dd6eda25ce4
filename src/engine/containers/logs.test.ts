/** The json-file log reader on real files: tails, long logs in bounded batches, characters split by reads, follow. */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLogBatches, readLogs, type LogEntry } from './logs.js';

const dir = mkdtempSync(join(tmpdir(), 'tsswarm-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (text: string, stream = 'stdout') => `${JSON.stringify({ log: text, stream, time: '2026-11-24T00:00:00Z' })}\n`;
let files = 0;
function logFile(lines: string[]): string {
  const path = join(dir, `log-${files++}`);
  writeFileSync(path, lines.join(''));
  return path;
}
async function all(path: string, tail: number): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readLogs(path, { follow: false, tail })) out.push(e.data.toString());
  return out;
}

describe('readLogs', () => {
  it('tail N gives the last N lines, at any N', async () => {
    const texts = Array.from({ length: 10_000 }, (_, i) => `line ${i}\n`);
    const path = logFile(texts.map((t) => line(t)));
    expect(await all(path, 3)).toEqual(texts.slice(-3));
    expect(await all(path, 0)).toEqual([]);
    expect(await all(path, 9_999)).toEqual(texts.slice(1));
    expect(await all(path, 20_000)).toEqual(texts);
    expect(await all(path, -1)).toEqual(texts);
  });

  it('reads a long log in batches of about 1 MiB, every line once and in order', async () => {
    const texts = Array.from({ length: 40_000 }, (_, i) => `${String(i).padStart(8, '0')} ${'x'.repeat(100)}\n`);
    const path = logFile(texts.map((t) => line(t, t.startsWith('0000000') ? 'stderr' : 'stdout')));
    const seen: LogEntry[] = [];
    let batches = 0;
    for await (const batch of readLogBatches(path, { follow: false, tail: -1 })) {
      batches++;
      expect(batch.length).toBeLessThan(12_000); // ~1 MiB of ~170-byte lines
      seen.push(...batch);
    }
    expect(batches).toBeGreaterThan(5);
    expect(seen.map((e) => e.data.toString())).toEqual(texts);
    expect(seen.filter((e) => e.stream === 'stderr')).toHaveLength(10);
  });

  it('keeps multi-byte characters whole where a read ends inside one', async () => {
    // Lines of 3-byte and 4-byte characters, long enough that 64 KiB reads split some of them.
    const texts = Array.from({ length: 3000 }, (_, i) => `${i} ${'€'.repeat(20 + (i % 7))}${'🐳'.repeat(i % 5)}\n`);
    const path = logFile(texts.map((t) => line(t)));
    expect(await all(path, -1)).toEqual(texts);
  });

  it('follows new lines until the container is finished, and skips a torn line', async () => {
    const path = logFile([line('first\n')]);
    let finish!: () => void;
    const finished = new Promise<void>((r) => { finish = r; });
    const got: string[] = [];
    const reading = (async () => {
      for await (const e of readLogs(path, { follow: true, tail: -1, finished })) got.push(e.data.toString());
    })();
    await new Promise((r) => setTimeout(r, 100));
    appendFileSync(path, line('second\n') + '{"log":"torn');
    appendFileSync(path, '\n' + line('third\n'));
    await new Promise((r) => setTimeout(r, 300));
    finish();
    await reading;
    expect(got).toEqual(['first\n', 'second\n', 'third\n']);
  });
});
