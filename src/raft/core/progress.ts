/**
 * The leader's view of one peer's log: how far it matches, what to send next, and flow control.
 *
 * Probe: one append in flight until the peer answers (we do not know where its log diverges).
 * Replicate: optimistic pipelining, bounded by `inflight` (the last index of each unacknowledged append).
 * Snapshot: the peer's log is behind our first index; a snapshot is streamed to it in chunks.
 */
export const ProgressState = { Probe: 0, Replicate: 1, Snapshot: 2 } as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** Ring buffer of the last index of each append in flight. */
export class Inflights {
  private readonly buf: Float64Array;
  private start = 0;
  count = 0;

  constructor(readonly capacity: number) {
    this.buf = new Float64Array(capacity);
  }

  full(): boolean {
    return this.count >= this.capacity;
  }

  add(lastIndex: number): void {
    this.buf[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees every append whose last index is <= index. */
  freeLE(index: number): void {
    while (this.count > 0 && this.buf[this.start]! <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** in Probe: an append is outstanding, wait for its answer (or a heartbeat response) */
  probeSent = false;
  /** heard from since the last check-quorum round */
  recentActive = false;
  /** in Snapshot: index of the snapshot being sent and bytes the peer has acknowledged */
  pendingSnapshot = 0;
  snapOffset = 0;
  /** highest read sequence this peer has confirmed in the current term */
  readAck = 0;
  /** commit index last told to the peer, so a commit advance is propagated once */
  sentCommit = 0;
  readonly inflight: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflight = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
      this.pendingSnapshot = 0;
    } else {
      this.next = this.match + 1;
    }
    this.state = ProgressState.Probe;
    this.probeSent = false;
    this.inflight.reset();
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight.reset();
  }

  becomeSnapshot(snapIndex: number): void {
    this.state = ProgressState.Snapshot;
    this.pendingSnapshot = snapIndex;
    this.snapOffset = 0;
    this.probeSent = false;
    this.inflight.reset();
  }

  /** An accepted append up to index. Returns true if match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * A rejected append of prevIndex `rejected`; `hint` is where the peer's log may match.
   * Returns false if the rejection is stale (answers an older append).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  paused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflight.full();
      default:
        return true;
    }
  }
}
