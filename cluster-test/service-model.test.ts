import { describe, expect, it } from 'vitest';
import { checkServiceHistory, type ServiceOp } from './service-model.js';

const create = (name: string, token: string, call: number, ret: number, version = call + 1): ServiceOp => ({ input: { op: 'create', name, token }, output: { ok: true, version, token }, call, ret });
const update = (name: string, expectToken: string, expectVersion: number, token: string, call: number, ret: number, result: 'ok' | 'conflict' | 'pending', version = call + 100): ServiceOp => ({
  input: { op: 'update', name, expectVersion, expectToken, token },
  output: result === 'ok' ? { ok: true, version, token } : result === 'conflict' ? { ok: false, error: 'conflict' } : undefined,
  call, ret: result === 'pending' ? Infinity : ret,
});
const read = (name: string, token: string | null, version: number, call: number, ret: number): ServiceOp => ({
  input: { op: 'read', name }, output: token === null ? { ok: false, error: 'not-found' } : { ok: true, version, token }, call, ret,
});

describe('service history checker', () => {
  it('accepts compare-and-set updates where exactly one of two racing writers wins', () => {
    const h = [create('s', 'a', 0, 1, 1), update('s', 'a', 1, 'b', 2, 5, 'ok', 10), update('s', 'a', 1, 'c', 3, 6, 'conflict'), read('s', 'b', 10, 7, 8)];
    const v = checkServiceHistory(h);
    expect(v.linearizable).toBe(true);
    expect(v.lostAcknowledgedWrites).toBe(0);
    expect(v.versionAnomalies).toEqual([]);
  });

  it('rejects two successful updates from the same version (a lost update)', () => {
    const h = [create('s', 'a', 0, 1, 1), update('s', 'a', 1, 'b', 2, 5, 'ok', 10), update('s', 'a', 1, 'c', 3, 6, 'ok', 11), read('s', 'c', 11, 7, 8)];
    const v = checkServiceHistory(h);
    expect(v.linearizable).toBe(false);
    expect(v.failing!.service).toBe('s');
    expect(v.failing!.history.join('\n')).toMatch(/token=b/);
  });

  it('counts a read that went back past an acknowledged write as a lost write', () => {
    const h = [create('s', 'a', 0, 1, 1), update('s', 'a', 1, 'b', 2, 3, 'ok', 10), read('s', 'a', 1, 4, 5)];
    const v = checkServiceHistory(h);
    expect(v.linearizable).toBe(false);
    expect(v.lostAcknowledgedWrites).toBe(1);
    expect(v.failing!.history).toHaveLength(3);
  });

  it('lets an indeterminate update take effect or not', () => {
    expect(checkServiceHistory([create('s', 'a', 0, 1, 1), update('s', 'a', 1, 'b', 2, 0, 'pending'), read('s', 'b', 20, 5, 6)]).linearizable).toBe(true);
    expect(checkServiceHistory([create('s', 'a', 0, 1, 1), update('s', 'a', 1, 'b', 2, 0, 'pending'), read('s', 'a', 1, 5, 6)]).linearizable).toBe(true);
    // but not undo itself once seen
    expect(checkServiceHistory([create('s', 'a', 0, 1, 1), update('s', 'a', 1, 'b', 2, 0, 'pending'), read('s', 'b', 20, 5, 6), read('s', 'a', 1, 7, 8)]).linearizable).toBe(false);
  });

  it('reports one token seen at two versions', () => {
    const v = checkServiceHistory([create('s', 'a', 0, 1, 1), read('s', 'a', 2, 2, 3)]);
    expect(v.versionAnomalies).toHaveLength(1);
  });
});

describe('minimal failing history of a long run', () => {
  it('shrinks a 6000-operation compare-and-set chain with one stale read at the end to the three operations that explain it', () => {
    const ops: ServiceOp[] = [create('s', 'c0', 0, 1, 1)];
    let t = 2;
    let token = 'c0';
    let version = 1;
    for (let i = 1; i < 6000; i++) {
      if (i % 2) {
        ops.push(update('s', token, version, `c${i}`, t, t + 1, 'ok', version + 1));
        token = `c${i}`;
        version++;
      } else {
        ops.push(read('s', token, version, t, t + 1));
      }
      t += 2;
    }
    expect(checkServiceHistory(ops).linearizable).toBe(true);
    ops.push(read('s', 'c0', 1, t, t + 1));
    // No time budget: on a loaded machine a budget would stop the shrinking early, and this checks the result.
    const v = checkServiceHistory(ops, { minimizeBudgetMs: Infinity });
    expect(v.linearizable).toBe(false);
    expect(v.failing!.history).toHaveLength(3);
    expect(v.failing!.history[0]).toMatch(/create s token=c0/);
    expect(v.failing!.history[1]).toMatch(/update s if version=1 \(token c0\) token=c1/);
    expect(v.failing!.history[2]).toMatch(/read s -> ok version=1 token=c0/);
    expect(v.lostAcknowledgedWrites).toBeGreaterThan(0);
  });
});
