/**
 * Keeps many node indexes consistent without touching all of them on every placement.
 *
 * A node belongs to many indexes (one per constraint set and preference group it qualifies for);
 * re-keying all of them on every placement would cost that many O(log n) updates. Instead every
 * change of a node's free resources is appended to a log, and an index catches up on the log when a
 * batch is about to use it, touching each changed node once however many tasks it received.
 *
 * Binpack's order is frozen for the length of a `place()` call (nodes are ranked by fullness at the
 * start of the call, then filled first-fit in that order: first-fit-decreasing with the fullest nodes
 * first). So for those indexes, changes logged before the call re-key their node, and changes made
 * during the call only refresh the free-resource maxima on its path. "Exact" indexes (spread's task
 * counts) re-key on every change.
 */

import type { OrderedIndex } from './ordered-index.js';

export class ChangeLog {
  private changes: number[] = [];
  private readonly stamp: Uint32Array;
  private round = 0;
  /** Position in the log where the current `place()` call began. */
  private callStart = 0;
  private readonly all: OrderedIndex[] = [];
  private readonly exact = new Set<OrderedIndex>();

  constructor(nodeCount: number) {
    this.stamp = new Uint32Array(nodeCount);
  }

  get length(): number {
    return this.changes.length;
  }

  /** Node i's free resources or task count changed. */
  record(i: number): void {
    this.changes.push(i);
  }

  /** Track an index that reflects the current state (just built). */
  register(index: OrderedIndex, exact = false): void {
    index.keyedTo = index.freshTo = this.changes.length;
    this.all.push(index);
    if (exact) this.exact.add(index);
  }

  /** The index has absorbed every change so far (its batch kept it up to date). */
  markFresh(index: OrderedIndex, rekeyed: boolean): void {
    index.freshTo = this.changes.length;
    if (rekeyed) index.keyedTo = this.changes.length;
  }

  /** Bring an index up to date. */
  sync(index: OrderedIndex): void {
    const now = this.changes.length;
    const rekeyTo = this.exact.has(index) ? now : this.callStart;
    if (index.keyedTo < rekeyTo) {
      const round = this.nextRound();
      for (let k = index.keyedTo; k < rekeyTo; k++) {
        const i = this.changes[k]!;
        if (this.stamp[i] === round) continue;
        this.stamp[i] = round;
        index.update(i);
      }
      index.keyedTo = rekeyTo;
      if (index.freshTo < rekeyTo) index.freshTo = rekeyTo;
    }
    if (index.freshTo < now) {
      const round = this.nextRound();
      for (let k = Math.max(index.freshTo, rekeyTo); k < now; k++) {
        const i = this.changes[k]!;
        if (this.stamp[i] === round) continue;
        this.stamp[i] = round;
        index.refresh(i);
      }
      index.freshTo = now;
    }
  }

  /** At the start of `place()`: freeze binpack orders from here; keep the log bounded. */
  startCall(): void {
    if (this.changes.length >= 4 * this.stamp.length + 100_000) {
      this.callStart = this.changes.length;
      for (const index of this.all) this.sync(index);
      this.changes = [];
      for (const index of this.all) index.keyedTo = index.freshTo = 0;
    }
    this.callStart = this.changes.length;
  }

  /**
   * A fresh stamp round: `seen(i, round)` is true once per node per round. Shared with member-list
   * cleaning, which needs the same "once per node" marking.
   */
  nextRound(): number {
    return ++this.round;
  }

  seen(i: number, round: number): boolean {
    if (this.stamp[i] === round) return true;
    this.stamp[i] = round;
    return false;
  }
}
