/**
 * A set of nodes ordered by a strategy's preference (a treap in flat arrays), where every subtree also
 * knows the most free CPU and the most free memory among its nodes. "The most preferred node with at
 * least c CPU and m memory free" then walks down from the preferred end and skips whole subtrees that
 * cannot fit, instead of scanning full nodes one by one. Because nodes of similar preference tend to
 * be similarly full, the skip works well: a lookup, an insert and a removal cost O(log n) in practice.
 * (In two dimensions a subtree may have a CPU-rich and a memory-rich node but neither fitting both,
 * so the worst case is not logarithmic; the benchmark measures the real cost.)
 *
 * Storage is per member (slots that grow as needed) plus one Int32 per cluster node to find a node's
 * slot: a scheduler keeps an index per distinct constraint set, and services pinned with
 * `node.hostname==...` would otherwise cost a cluster-sized index each.
 *
 * Priorities come from a hash of the node's position, so the shape (and every answer) is deterministic.
 */

export class OrderedIndex {
  /** Node position -> slot, -1 when not a member. */
  private readonly slotOf: Int32Array;
  // Per slot:
  private nodeAt: Int32Array;
  private left: Int32Array;
  private right: Int32Array;
  private priority: Uint32Array;
  /** The key each member had when it was inserted: removal must find it by that key. */
  private key: Float64Array;
  private maxCpu: Float64Array;
  private maxMemory: Float64Array;
  private freeSlots: number[] = [];
  private nextSlot = 0;
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
    nodeCount: number,
    private readonly freeCpu: Float64Array,
    private readonly freeMemory: Float64Array,
    /** Bigger is preferred; ties go to the lower node position. */
    private keyOf: (i: number) => number,
    /** Expected number of members; storage grows past it. */
    capacity = 16,
  ) {
    this.slotOf = new Int32Array(nodeCount).fill(-1);
    const c = Math.max(1, capacity);
    this.nodeAt = new Int32Array(c);
    this.left = new Int32Array(c);
    this.right = new Int32Array(c);
    this.priority = new Uint32Array(c);
    this.key = new Float64Array(c);
    this.maxCpu = new Float64Array(c);
    this.maxMemory = new Float64Array(c);
  }

  /** Empty the index in O(size) and, optionally, change its ordering (for reuse as scratch). */
  clear(keyOf?: (i: number) => number): void {
    for (let s = 0; s < this.nextSlot; s++) {
      const i = this.nodeAt[s]!;
      if (i >= 0 && this.slotOf[i] === s) this.slotOf[i] = -1;
    }
    this.freeSlots = [];
    this.nextSlot = 0;
    this.root = -1;
    this.count = 0;
    if (keyOf) this.keyOf = keyOf;
  }

  get size(): number {
    return this.count;
  }

  has(i: number): boolean {
    return this.slotOf[i]! >= 0;
  }

  /** Add node i, ranked by its current key unless a key is given (to put it back where it was). */
  insert(i: number, key: number = this.keyOf(i)): void {
    if (this.slotOf[i]! >= 0) return;
    const s = this.allocate(i, key);
    this.maxCpu[s] = this.freeCpu[i]!;
    this.maxMemory[s] = this.freeMemory[i]!;
    this.count++;
    this.root = this.insertAt(this.root, s);
  }

  /**
   * Fill an empty index with `nodes` in O(m log m) for the sort plus O(m) for the tree: a Cartesian
   * tree over the sorted keys, built with a stack, instead of m separate insertions.
   */
  build(nodes: readonly number[]): void {
    if (this.count !== 0) throw new Error('build() needs an empty index');
    const slots: number[] = [];
    for (const i of nodes) if (this.slotOf[i]! < 0) slots.push(this.allocate(i, this.keyOf(i)));
    slots.sort((a, b) => (this.less(a, b) ? -1 : this.less(b, a) ? 1 : 0));
    const stack: number[] = [];
    for (const x of slots) {
      let last = -1;
      while (stack.length > 0 && this.priority[stack[stack.length - 1]!]! < this.priority[x]!) last = stack.pop()!;
      this.left[x] = last;
      if (stack.length > 0) this.right[stack[stack.length - 1]!] = x;
      stack.push(x);
    }
    this.root = stack.length > 0 ? stack[0]! : -1;
    this.count = slots.length;
    this.pullAll(this.root);
  }

  remove(i: number): void {
    const s = this.slotOf[i]!;
    if (s < 0) return;
    this.root = this.removeAt(this.root, s);
    this.slotOf[i] = -1;
    this.nodeAt[s] = -1;
    this.freeSlots.push(s);
    this.count--;
  }

  /** The key a member was ranked by. */
  keyOfMember(i: number): number {
    return this.key[this.slotOf[i]!]!;
  }

  /** Re-key node i after its free resources changed (no-op if it is not a member). */
  update(i: number): void {
    if (this.slotOf[i]! < 0) return;
    this.remove(i);
    this.insert(i);
  }

  /**
   * Node i's free resources changed but its place in the order must not: recompute the subtree
   * maxima on its path only (found by its stored key), without moving it.
   */
  refresh(i: number): void {
    const s = this.slotOf[i]!;
    if (s < 0) return;
    this.refreshAt(this.root, s);
  }

  /** The most preferred member with at least `cpu` and `memory` free, or -1. */
  best(cpu: number, memory: number): number {
    this.needCpu = cpu;
    this.needMemory = memory;
    const s = this.search(this.root);
    return s < 0 ? -1 : this.nodeAt[s]!;
  }

  /** Members from most to least preferred (for tests and diagnostics). */
  toArray(): number[] {
    const out: number[] = [];
    const walk = (t: number): void => {
      if (t < 0) return;
      walk(this.right[t]!);
      out.push(this.nodeAt[t]!);
      walk(this.left[t]!);
    };
    walk(this.root);
    return out;
  }

  private allocate(i: number, key: number): number {
    let s = this.freeSlots.pop();
    if (s === undefined) {
      if (this.nextSlot === this.nodeAt.length) this.grow();
      s = this.nextSlot++;
    }
    this.slotOf[i] = s;
    this.nodeAt[s] = i;
    this.left[s] = -1;
    this.right[s] = -1;
    this.priority[s] = hash32(i);
    this.key[s] = key;
    return s;
  }

  private grow(): void {
    const c = this.nodeAt.length * 2;
    const more = <T extends Int32Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(c);
      b.set(a);
      return b;
    };
    this.nodeAt = more(this.nodeAt, (n) => new Int32Array(n));
    this.left = more(this.left, (n) => new Int32Array(n));
    this.right = more(this.right, (n) => new Int32Array(n));
    this.priority = more(this.priority, (n) => new Uint32Array(n));
    this.key = more(this.key, (n) => new Float64Array(n));
    this.maxCpu = more(this.maxCpu, (n) => new Float64Array(n));
    this.maxMemory = more(this.maxMemory, (n) => new Float64Array(n));
  }

  /** Slot a sorts before slot b (is less preferred). */
  private less(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && this.nodeAt[a]! > this.nodeAt[b]!);
  }

  private pullAll(t: number): void {
    if (t < 0) return;
    this.pullAll(this.left[t]!);
    this.pullAll(this.right[t]!);
    this.pull(t);
  }

  private pull(t: number): void {
    const i = this.nodeAt[t]!;
    let c = this.freeCpu[i]!;
    let m = this.freeMemory[i]!;
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

  private refreshAt(t: number, x: number): void {
    if (t < 0) throw new Error('ordered index corrupted: member not found');
    if (t !== x) this.refreshAt(this.less(x, t) ? this.left[t]! : this.right[t]!, x);
    this.pull(t);
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
    const i = this.nodeAt[t]!;
    if (this.freeCpu[i]! >= this.needCpu && this.freeMemory[i]! >= this.needMemory) return t;
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
