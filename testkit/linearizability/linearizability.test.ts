import { describe, expect, it } from 'vitest';
import { checkKvHistory, type KvInput, type KvOutput, type Operation } from './linearizability.js';

type Op = Operation<KvInput, KvOutput>;
const put = (key: string, value: string, call: number, ret: number): Op => ({ input: { op: 'put', key, value }, output: null, call, ret });
const get = (key: string, out: string | null, call: number, ret: number): Op => ({ input: { op: 'get', key }, output: out, call, ret });
const pendingPut = (key: string, value: string, call: number): Op => ({ input: { op: 'put', key, value }, output: undefined, call, ret: Infinity });

describe('linearizability checker (Wing & Gong with memoization)', () => {
  it('accepts a sequential history', () => {
    expect(checkKvHistory([put('x', '1', 0, 1), get('x', '1', 2, 3), put('x', '2', 4, 5), get('x', '2', 6, 7)])).toBeNull();
  });

  it('accepts concurrent ops that can be ordered either way', () => {
    // get overlaps the put: may see old or new value
    expect(checkKvHistory([put('x', '1', 0, 10), get('x', null, 1, 2)])).toBeNull();
    expect(checkKvHistory([put('x', '1', 0, 10), get('x', '1', 1, 2)])).toBeNull();
    // two overlapping puts, later gets agree on one winner
    expect(checkKvHistory([put('x', 'a', 0, 5), put('x', 'b', 1, 6), get('x', 'a', 7, 8), get('x', 'a', 9, 10)])).toBeNull();
  });

  it('rejects a stale read after a completed write', () => {
    expect(checkKvHistory([put('x', '1', 0, 1), get('x', null, 2, 3)])).toBe('x');
  });

  it('rejects reads that flip back (new then old value)', () => {
    const h = [put('x', 'a', 0, 1), put('x', 'b', 2, 20), get('x', 'b', 3, 4), get('x', 'a', 5, 6)];
    expect(checkKvHistory(h)).toBe('x');
  });

  it('rejects a value nobody wrote', () => {
    expect(checkKvHistory([put('x', '1', 0, 1), get('x', '7', 2, 3)])).toBe('x');
  });

  it('treats a pending put as possibly applied at any later time, or never', () => {
    expect(checkKvHistory([pendingPut('x', '1', 0), get('x', null, 1, 2), get('x', '1', 3, 4)])).toBeNull();
    expect(checkKvHistory([pendingPut('x', '1', 0), get('x', null, 1, 2)])).toBeNull();
    // but it cannot take effect before it was called
    expect(checkKvHistory([get('x', '1', 0, 1), pendingPut('x', '1', 2)])).toBe('x');
    // nor disappear once observed
    expect(checkKvHistory([pendingPut('x', '1', 0), get('x', '1', 1, 2), get('x', null, 3, 4)])).toBe('x');
  });

  it('checks keys independently', () => {
    expect(checkKvHistory([put('x', '1', 0, 1), put('y', '2', 0, 1), get('y', '2', 2, 3), get('x', '1', 2, 3)])).toBeNull();
    expect(checkKvHistory([put('x', '1', 0, 1), put('y', '2', 0, 1), get('y', '2', 2, 3), get('x', '2', 2, 3)])).toBe('x');
  });

  it('handles a large concurrent history quickly (memoization)', () => {
    const ops: Op[] = [];
    // 8 writers in overlapping rounds, each round followed by a read of the last round's winner
    let t = 0;
    for (let round = 0; round < 40; round++) {
      const start = t;
      for (let w = 0; w < 8; w++) ops.push(put('k', `${round}-${w}`, start + w, start + 20 + w));
      t = start + 30;
      ops.push(get('k', `${round}-7`, t, t + 1));
      t += 2;
    }
    const t0 = Date.now();
    expect(checkKvHistory(ops)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(5000);
    // make one read impossible: it sees a value from a round that is over
    ops.push(get('k', '0-0', t + 5, t + 6));
    expect(checkKvHistory(ops)).toBe('k');
  });
});

describe('minimal failing sub-history', () => {
  it('keeps only the ops that make a history non-linearizable', async () => {
    const { checkPartitioned, kvExplains } = await import('./linearizability.js');
    const model = {
      init: () => null as string | null,
      step: (s: string | null, i: KvInput, o: KvOutput | undefined) => (i.op === 'put' ? i.value : o === undefined || o === s ? s : undefined),
      key: (s: string | null) => String(s),
    };
    const h: Op[] = [put('x', '1', 0, 1), get('x', '1', 2, 3), put('x', '2', 4, 5), get('x', '2', 6, 7), put('y', '9', 0, 1), get('x', '1', 8, 9), get('x', '1', 10, 11)];
    const r = checkPartitioned(model, h, (op) => op.input.key, kvExplains);
    expect(r.ok).toBe(false);
    expect(r.partition).toBe('x');
    // the stale read after the second put: put 1, put 2, then a read of 1
    expect(r.minimal).toHaveLength(3);
    expect(r.minimal!.some((op) => op.input.op === 'put' && op.input.value === '1')).toBe(true);
    expect(r.minimal!.some((op) => op.input.op === 'put' && op.input.value === '2')).toBe(true);
    expect(r.minimal!.some((op) => op.input.op === 'get' && op.output === '1')).toBe(true);
    expect(checkPartitioned(model, h.slice(0, 5), (op) => op.input.key).ok).toBe(true);
  });
});
