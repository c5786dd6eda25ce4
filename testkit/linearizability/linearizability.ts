/**
 * Linearizability checker: Wing & Gong's search with memoization of (linearized set, model state),
 * as in Porcupine. Histories are split per object first (P-compositionality: a history is
 * linearizable iff every object's is), which keeps each search small. Used by the raft simulation
 * (a key-value register per key) and by cluster-test (services with compare-and-set on versions).
 */

export interface Model<S, I, O> {
  init(): S;
  /** Applies input to state; returns the next state if the observed output is possible, else undefined. */
  step(state: S, input: I, output: O | undefined): S | undefined;
  /** A stable string for memoization. */
  key(state: S): string;
}

export interface Operation<I, O> {
  input: I;
  /** undefined while pending (never returned): it may or may not have taken effect */
  output: O | undefined;
  call: number;
  /** Infinity when pending */
  ret: number;
}

interface Node {
  isCall: boolean;
  id: number;
  time: number;
  match: Node | null; // call -> its return
  prev: Node | null;
  next: Node | null;
}

export function checkLinearizable<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[]): boolean {
  const n = ops.length;
  if (n === 0) return true;
  // events sorted by time; at equal times calls go first so that overlapping is the generous reading
  const events: { isCall: boolean; id: number; time: number }[] = [];
  for (let i = 0; i < n; i++) {
    events.push({ isCall: true, id: i, time: ops[i]!.call });
    events.push({ isCall: false, id: i, time: ops[i]!.ret });
  }
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));

  const head: Node = { isCall: false, id: -1, time: -Infinity, match: null, prev: null, next: null };
  let tail = head;
  const calls: Node[] = new Array(n);
  const rets: Node[] = new Array(n);
  for (const ev of events) {
    const node: Node = { isCall: ev.isCall, id: ev.id, time: ev.time, match: null, prev: tail, next: null };
    tail.next = node;
    tail = node;
    if (ev.isCall) calls[ev.id] = node;
    else rets[ev.id] = node;
  }
  for (let i = 0; i < n; i++) calls[i]!.match = rets[i]!;

  const lift = (c: Node): void => {
    c.prev!.next = c.next;
    if (c.next) c.next.prev = c.prev;
    const r = c.match!;
    r.prev!.next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: Node): void => {
    const r = c.match!;
    r.prev!.next = r;
    if (r.next) r.next.prev = r;
    c.prev!.next = c;
    if (c.next) c.next.prev = c;
  };

  const words = (n + 31) >>> 5;
  const linearized = new Uint32Array(words);
  const cache = new Set<string>();
  const stack: { node: Node; state: S }[] = [];
  let state = model.init();
  let entry = head.next;

  while (head.next !== null) {
    if (entry === null) return false;
    if (entry.isCall) {
      const op = ops[entry.id]!;
      const next = model.step(state, op.input, op.output);
      let advanced = false;
      if (next !== undefined) {
        const w = entry.id >>> 5;
        const bit = 1 << (entry.id & 31);
        linearized[w]! |= bit;
        const key = linearized.join(',') + '|' + model.key(next);
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          linearized[w]! &= ~bit;
        }
      }
      if (!advanced) entry = entry.next;
    } else {
      // a return whose call is not linearized yet: backtrack
      const top = stack.pop();
      if (!top) return false;
      state = top.state;
      const id = top.node.id;
      linearized[id >>> 5]! &= ~(1 << (id & 31));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return true;
}

export interface CheckResult<I, O> {
  ok: boolean;
  /** the first object whose history is not linearizable */
  partition?: string;
  /** a smallest sub-history of that object that is still not linearizable (every op in it matters) */
  minimal?: Operation<I, O>[];
}

/**
 * Checks a history object by object (`partitionOf` names an op's object). On a violation, the
 * failing object's history is shrunk to a minimal failing sub-history: ops are dropped one at a
 * time as long as the rest stays non-linearizable.
 */
export function checkPartitioned<S, I, O>(
  model: Model<S, I, O>, ops: Operation<I, O>[], partitionOf: (op: Operation<I, O>) => string, explains?: Explains<I, O>,
  /** minimizeBudgetMs: how long the failing history may be shrunk (default 20 s; tests pass Infinity). */
  opts: { minimize?: boolean; minimizeBudgetMs?: number } = {},
): CheckResult<I, O> {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const op of ops) {
    const k = partitionOf(op);
    let list = parts.get(k);
    if (!list) parts.set(k, (list = []));
    list.push(op);
  }
  for (const [partition, list] of parts) {
    if (!checkLinearizable(model, list)) return { ok: false, partition, ...(opts.minimize ?? true ? { minimal: minimalFailing(model, list, explains, opts.minimizeBudgetMs) } : {}) };
  }
  return { ok: true };
}

/**
 * `explains(op, rest)`: op produced something an op in `rest` observed (a write whose value a read
 * returned). Such an op is never dropped on its own, so that the minimal history shows a stale read
 * as "write a, write b, read a", not as "read a" out of nowhere.
 */
export type Explains<I, O> = (op: Operation<I, O>, rest: Operation<I, O>[]) => boolean;

/**
 * Shrinks a non-linearizable history until removing any single op makes it linearizable (delta
 * debugging: halves, quarters, ..., single ops). Long histories are shrunk for at most `budgetMs`;
 * what is returned then still fails, but may not be minimal.
 */
export function minimalFailing<S, I, O>(
  model: Model<S, I, O>, ops: Operation<I, O>[], explains: Explains<I, O> = () => false, budgetMs = 20_000,
): Operation<I, O>[] {
  const deadline = Date.now() + budgetMs;
  let current = ops.slice();
  const tryRemove = (from: number, to: number): boolean => {
    const candidate = current.slice(0, from).concat(current.slice(to));
    if (candidate.length === 0 || current.slice(from, to).some((op) => explains(op, candidate))) return false;
    if (checkLinearizable(model, candidate)) return false;
    current = candidate;
    return true;
  };
  // Big steps first (halves, quarters, ...), then single ops: each removal must keep it failing.
  for (let chunk = Math.max(1, current.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let i = 0; i < current.length;) {
      if (Date.now() > deadline) return current;
      if (!tryRemove(i, i + chunk)) i += chunk;
    }
  }
  // Single ops again, from the end: an op that explained a later one may be removable now.
  for (let changed = true; changed;) {
    changed = false;
    for (let i = current.length - 1; i >= 0; i--) {
      if (Date.now() > deadline) return current;
      if (i < current.length && tryRemove(i, i + 1)) changed = true;
    }
  }
  return current;
}

// ---------------------------------------------------------------- key-value register model

export type KvInput = { op: 'put'; key: string; value: string } | { op: 'get'; key: string };
/** put returns null; get returns the value or null when absent */
export type KvOutput = string | null;

const registerModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    if (input.op === 'put') return input.value;
    if (output === undefined) return state; // a pending get has no effect and no constraint
    return output === state ? state : undefined;
  },
  key: (s) => (s === null ? '\u0000' : s),
};

/** A put explains every get that returned its value. */
export const kvExplains: Explains<KvInput, KvOutput> = (op, rest) =>
  op.input.op === 'put' && rest.some((r) => r.input.op === 'get' && r.output === (op.input as { value: string }).value);

/** Checks a KV history key by key. Returns the first key whose history is not linearizable, or null. */
export function checkKvHistory(ops: Operation<KvInput, KvOutput>[]): string | null {
  // a get that never returned constrains nothing
  const relevant = ops.filter((op) => !(op.input.op === 'get' && op.output === undefined));
  return checkPartitioned(registerModel, relevant, (op) => op.input.key, kvExplains).partition ?? null;
}
