import { describe, expect, it } from 'vitest';
import type { LogEntry } from './containers/logs.js';
import { mergeLogLines } from './node-api.js';

const line = (stream: LogEntry['stream'], text: string, time = 't'): LogEntry => ({ stream, data: Buffer.from(text), time });

describe('mergeLogLines (run output)', () => {
  it('merges runs of one stream, keeps the order of streams and every byte', () => {
    const batch = [line('stdout', 'a\n', 't1'), line('stdout', 'b\n', 't2'), line('stderr', 'e\n', 't3'), line('stdout', 'c\n', 't4'), line('stdout', 'd', 't5')];
    const merged = mergeLogLines(batch);
    expect(merged.map((e) => [e.stream, e.data.toString(), e.time])).toEqual([['stdout', 'a\nb\n', 't1'], ['stderr', 'e\n', 't3'], ['stdout', 'c\nd', 't4']]);
  });

  it('cuts a long run into messages of at most 256 KiB', () => {
    const batch = Array.from({ length: 1000 }, (_, i) => line('stdout', `${String(i).padStart(1023, '.')}\n`));
    const merged = mergeLogLines(batch);
    expect(merged.length).toBe(4);
    expect(merged.every((e) => e.data.length <= 256 * 1024)).toBe(true);
    expect(Buffer.concat(merged.map((e) => e.data)).equals(Buffer.concat(batch.map((e) => e.data)))).toBe(true);
  });

  it('leaves an empty batch empty', () => {
    expect(mergeLogLines([])).toEqual([]);
  });
});
