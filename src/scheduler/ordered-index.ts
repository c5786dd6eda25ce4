/**
 * A set of nodes ordered by a strategy's preference (a treap in flat arrays), where every subtree also
 * knows the most free CPU and the most free memory among its nodes. "The most preferred node with at
 * least c CPU and m memory free" then walks down from the preferred end and skips whole subtrees that
 * cannot fit, instead of scanning full nodes one by one. Because nodes of similar preference tend to
 * be similarly full, the skip works well: a lookup, an insert and a removal cost O(log n) in practice.
 * (In two dimensions a subtree may have a CPU-rich and a memory-rich node but neither fitting both,
 * so the worst case is not logarithmic; the benchmark measures the real cost.)
 *
 * Priorities come from a hash of the node's position, so the shape (and every answer) is deterministic.
 */

export class OrderedIndex {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly priority: Uint32Array;
  /** The key each member had when it was inserted: removal must find it by that key. */
  private readonly key: Float64Array;
  private readonly maxCpu: Float64Array;
  private readonly maxMemory: Float64Array;
  private readonly member: Uint8Array;
  private root = -1;
  private count = 0;
  /** For the owner's lazy bookkeeping: log positions up to which members were re-keyed / refreshed. */
  keyedTo = 0;
  freshTo = 0;
  // Scratch for split, to avoid allocating a tuple per call.
  private splitLeft = -1;
  private splitRight = -1;
  private needCpu = 0;
  private needMemory = 0;

  constructor(
    capacity: number,
    private readonly freeCpu: Float64Array,
    private readonly freeMemory: Float64Array,
    /** Bigger is preferred; ties go to the lower node position. */
    private keyOf: (i: number) => number,
  ) {
    this.left = new Int32Array(capacity).fill(-1);
    this.right = new Int32Array(capacity).fill(-1);
    this.priority = new Uint32Array(capacity);
    for (let i = 0; i < capacity; i++) this.priority[i] = hash32(i);
    this.key = new Float64Array(capacity);
    this.maxCpu = new Float64Array(capacity);
    this.maxMemory = new Float64Array(capacity);
    this.member = new Uint8Array(capacity);
  }

  /** Empty the index in O(size) and, optionally, change its ordering (for reuse as scratch). */
  clear(keyOf?: (i: number) => number): void {
    const stack = this.root >= 0 ? [this.root] : [];
    while (stack.length > 0) {
      const t = stack.pop()!;
      this.member[t] = 0;
      if (this.left[t]! >= 0) stack.push(this.left[t]!);
      if (this.right[t]! >= 0) stack.push(this.right[t]!);
    }
    this.root = -1;
    this.count = 0;
    if (keyOf) this.keyOf = keyOf;
  }

  get size(): number {
    return this.count;
  }

  has(i: number): boolean {
    return this.member[i] === 1;
  }

  /** Add node i, ranked by its current key unless a key is given (to put it back where it was). */
  insert(i: number, key: number = this.keyOf(i)): void {
    if (this.member[i] === 1) return;
    this.member[i] = 1;
    this.count++;
    this.key[i] = key;
    this.left[i] = -1;
    this.right[i] = -1;
    this.maxCpu[i] = this.freeCpu[i]!;
    this.maxMemory[i] = this.freeMemory[i]!;
    this.root = this.insertAt(this.root, i);
  }

  /**
   * Fill an empty index with `nodes` in O(m log m) for the sort plus O(m) for the tree: a Cartesian
   * tree over the sorted keys, built with a stack, instead of m separate insertions.
   */
  build(nodes: readonly number[]): void {
    if (this.count !== 0) throw new Error('build() needs an empty index');
    const sorted = nodes.filter((i) => this.member[i] !== 1);
    for (const i of sorted) {
      this.member[i] = 1;
      this.key[i] = this.keyOf(i);
      this.left[i] = -1;
      this.right[i] = -1;
    }
    sorted.sort((a, b) => (this.less(a, b) ? -1 : this.less(b, a) ? 1 : 0));
    const stack: number[] = [];
    for (const x of sorted) {
      let last = -1;
      while (stack.length > 0 && this.priority[stack[stack.length - 1]!]! < this.priority[x]!) last = stack.pop()!;
      this.left[x] = last;
      if (stack.length > 0) this.right[stack[stack.length - 1]!] = x;
      stack.push(x);
    }
    this.root = stack.length > 0 ? stack[0]! : -1;
    this.count = sorted.length;
    this.pullAll(this.root);
  }

  private pullAll(t: number): void {
    if (t < 0) return;
    this.pullAll(this.left[t]!);
    this.pullAll(this.right[t]!);
    this.pull(t);
  }

  remove(i: number): void {
    if (this.member[i] !== 1) return;
    this.member[i] = 0;
    this.count--;
    this.root = this.removeAt(this.root, i);
  }

  /** The key a member was ranked by. */
  keyOfMember(i: number): number {
    return this.key[i]!;
  }

  /** Re-key node i after its free resources changed (no-op if it is not a member). */
  update(i: number): void {
    if (this.member[i] !== 1) return;
    this.remove(i);
    this.insert(i);
  }

  /**
   * Node i's free resources changed but its place in the order must not: recompute the subtree
   * maxima on its path only (found by its stored key), without moving it.
   */
  refresh(i: number): void {
    if (this.member[i] !== 1) return;
    this.refreshAt(this.root, i);
  }

  private refreshAt(t: number, x: number): void {
    if (t < 0) throw new Error('ordered index corrupted: member not found');
    if (t !== x) this.refreshAt(this.less(x, t) ? this.left[t]! : this.right[t]!, x);
    this.pull(t);
  }

  /** The most preferred member with at least `cpu` and `memory` free, or -1. */
  best(cpu: number, memory: number): number {
    this.needCpu = cpu;
    this.needMemory = memory;
    return this.search(this.root);
  }

  /** Members from most to least preferred (for tests and diagnostics). */
  toArray(): number[] {
    const out: number[] = [];
    const walk = (t: number): void => {
      if (t < 0) return;
      walk(this.right[t]!);
      out.push(t);
      walk(this.left[t]!);
    };
    walk(this.root);
    return out;
  }

  /** a sorts before b (is less preferred). */
  private less(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && a > b);
  }

  private pull(t: number): void {
    let c = this.freeCpu[t]!;
    let m = this.freeMemory[t]!;
    const l = this.left[t]!;
    const r = this.right[t]!;
    if (l >= 0) {
      if (this.maxCpu[l]! > c) c = this.maxCpu[l]!;
      if (this.maxMemory[l]! > m) m = this.maxMemory[l]!;
    }
    if (r >= 0) {
      if (this.maxCpu[r]! > c) c = this.maxCpu[r]!;
      if (this.maxMemory[r]! > m) m = this.maxMemory[r]!;
    }
    this.maxCpu[t] = c;
    this.maxMemory[t] = m;
  }

  private insertAt(t: number, x: number): number {
    if (t < 0) return x;
    if (this.priority[x]! > this.priority[t]!) {
      this.split(t, x);
      this.left[x] = this.splitLeft;
      this.right[x] = this.splitRight;
      this.pull(x);
      return x;
    }
    if (this.less(x, t)) this.left[t] = this.insertAt(this.left[t]!, x);
    else this.right[t] = this.insertAt(this.right[t]!, x);
    this.pull(t);
    return t;
  }

  /** Split subtree t into the members less than x (splitLeft) and the rest (splitRight). */
  private split(t: number, x: number): void {
    if (t < 0) {
      this.splitLeft = -1;
      this.splitRight = -1;
      return;
    }
    if (this.less(t, x)) {
      this.split(this.right[t]!, x);
      this.right[t] = this.splitLeft;
      this.pull(t);
      this.splitLeft = t;
    } else {
      this.split(this.left[t]!, x);
      this.left[t] = this.splitRight;
      this.pull(t);
      this.splitRight = t;
    }
  }

  private removeAt(t: number, x: number): number {
    if (t < 0) throw new Error('ordered index corrupted: member not found');
    if (t === x) return this.merge(this.left[t]!, this.right[t]!);
    if (this.less(x, t)) this.left[t] = this.removeAt(this.left[t]!, x);
    else this.right[t] = this.removeAt(this.right[t]!, x);
    this.pull(t);
    return t;
  }

  private merge(a: number, b: number): number {
    if (a < 0) return b;
    if (b < 0) return a;
    if (this.priority[a]! > this.priority[b]!) {
      this.right[a] = this.merge(this.right[a]!, b);
      this.pull(a);
      return a;
    }
    this.left[b] = this.merge(a, this.left[b]!);
    this.pull(b);
    return b;
  }

  private search(t: number): number {
    if (t < 0 || this.maxCpu[t]! < this.needCpu || this.maxMemory[t]! < this.needMemory) return -1;
    const r = this.search(this.right[t]!);
    if (r >= 0) return r;
    if (this.freeCpu[t]! >= this.needCpu && this.freeMemory[t]! >= this.needMemory) return t;
    return this.search(this.left[t]!);
  }
}

/** A fixed integer hash (Murmur3 finalizer): well-mixed priorities without any randomness. */
function hash32(x: number): number {
  let h = (x + 0x9e3779b9) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
