import type { Entry, Snapshot } from './types.js';

/**
 * The in-memory Raft log: entries after the last snapshot, plus bookkeeping of what is committed,
 * applied and persisted. The whole suffix after the snapshot is held in memory; log compaction
 * (snapshots from the state machine) keeps that bounded.
 */
export class RaftLog {
  snapIndex = 0;
  snapTerm = 0;
  /** entries[i].index === snapIndex + 1 + i */
  entries: Entry[] = [];
  committed = 0;
  applied = 0;
  /** highest index known to be in stable storage */
  stableTo = 0;

  constructor(snapIndex: number, snapTerm: number, entries: Entry[], commit: number) {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.entries = entries.slice();
    this.stableTo = this.lastIndex();
    this.committed = Math.max(snapIndex, Math.min(commit, this.lastIndex()));
    this.applied = snapIndex;
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }

  lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.snapTerm : this.entries[n - 1]!.term;
  }

  /** Term of the entry at index, or -1 if unknown (compacted away or beyond the end). */
  term(index: number): number {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex || index > this.lastIndex()) return -1;
    return this.entries[index - this.snapIndex - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    return this.entries[index - this.snapIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    const t = this.term(index);
    return t >= 0 && t === term;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi) capped at maxCount entries and maxBytes of data (at least one entry). */
  slice(lo: number, hi: number, maxCount: number, maxBytes: number): Entry[] {
    const start = lo - this.snapIndex - 1;
    let end = Math.min(hi - this.snapIndex - 1, start + maxCount, this.entries.length);
    if (start >= end) return [];
    let bytes = 0;
    for (let i = start; i < end; i++) {
      bytes += this.entries[i]!.data.length;
      if (bytes > maxBytes && i > start) {
        end = i;
        break;
      }
    }
    return this.entries.slice(start, end);
  }

  /** Leader-local append. */
  append(e: Entry): void {
    this.entries.push(e);
  }

  /**
   * Follower append after a matching prevIndex: skips entries already present, truncates at the first
   * conflict. Returns false (and changes nothing) if the conflict would be at or below the commit index,
   * which would mean a broken leader.
   */
  appendFrom(ents: Entry[]): boolean {
    let i = 0;
    for (; i < ents.length; i++) {
      const e = ents[i]!;
      const t = this.term(e.index);
      if (t < 0 && e.index > this.lastIndex()) break;
      if (t >= 0 && t !== e.term) {
        if (e.index <= this.committed) return false;
        this.truncateFrom(e.index);
        break;
      }
      // t < 0 below the snapshot: covered by the snapshot, skip
    }
    for (; i < ents.length; i++) this.entries.push(ents[i]!);
    return true;
  }

  private truncateFrom(index: number): void {
    this.entries.length = index - this.snapIndex - 1;
    if (this.stableTo >= index) this.stableTo = index - 1;
  }

  /** Largest index <= index whose term is <= term (for fast conflict backtracking). */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapIndex) {
      const t = this.term(i);
      if (t <= term) break;
      i--;
    }
    return i;
  }

  unstableEntries(): Entry[] {
    if (this.stableTo >= this.lastIndex()) return [];
    return this.entries.slice(this.stableTo - this.snapIndex);
  }

  /** Drops entries up to and including index (already covered by a snapshot). */
  compact(index: number, term: number): void {
    if (index <= this.snapIndex) return;
    const drop = Math.min(index - this.snapIndex, this.entries.length);
    this.entries = this.entries.slice(drop);
    this.snapIndex = index;
    this.snapTerm = term;
    if (this.stableTo < index) this.stableTo = index;
  }

  /** Replaces the whole log by a snapshot from the leader. */
  restore(s: Snapshot): void {
    this.entries = [];
    this.snapIndex = s.meta.index;
    this.snapTerm = s.meta.term;
    this.committed = s.meta.index;
    this.applied = s.meta.index;
    this.stableTo = s.meta.index;
  }
}
