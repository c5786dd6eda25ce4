import { mkdirSync } from 'node:fs';
import { open as openFile, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import type { Entry, HardState, Ready, Snapshot } from '../core/types.js';
import {
  CorruptRecordError, ENTRY_KEY_MAX, ENTRY_KEY_MIN, HARD_STATE_KEY, PROPOSAL_IDS_KEY, SNAPSHOT_KEY,
  decodeHardState, decodeProposalIds, encodeProposalIds, decodeSegment, decodeSnapshot, encodeHardState, encodeSegment, encodeSnapshot, segmentKey, snapshotHeader,
} from './codec.js';

export interface PersistedState {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/**
 * Raft log and hard state in LevelDB (DIR/log), snapshots as files (DIR/snap) that LevelDB points
 * to. Each ready batch is one LevelDB write batch with sync: true, so everything proposed while the
 * previous fsync ran shares the next one. Snapshots stay out of LevelDB because multi-megabyte values
 * make its memtables and compactions hold hundreds of megabytes.
 */
export class LevelRaftStorage {
  /**
   * Stored segments in key order, which is also write order: writing a segment at index f deletes
   * every segment keyed at or after f, so replaying segments in key order (each one truncating the
   * log to its first index) reproduces the log, overwrites included.
   */
  private segments: { first: number; last: number }[] = [];
  private syncedTerm = -1;
  private syncedVote = -1;

  private snapFile = '';
  /** index of the snapshot the stored pointer names */
  private snapIndex = 0;
  /** local snapshots being written in the background, in order */
  private snapChain: Promise<void> = Promise.resolve();
  private snapError: Error | null = null;

  private constructor(
    private readonly db: Level<Buffer, Buffer>,
    readonly dir: string,
    private readonly snapDir: string,
  ) {}

  static async open(dir: string): Promise<LevelRaftStorage> {
    const snapDir = join(dir, 'snap');
    mkdirSync(snapDir, { recursive: true });
    // the log is read only at start-up: a small block cache; small memtables keep the footprint flat
    const db = new Level<Buffer, Buffer>(join(dir, 'log'), {
      keyEncoding: 'buffer', valueEncoding: 'buffer', cacheSize: 1 << 20, writeBufferSize: 1 << 20,
    });
    await db.open();
    return new LevelRaftStorage(db, dir, snapDir);
  }

  /** Loads what survived; null for an empty directory. Throws a clear error on any corrupted record. */
  async load(): Promise<PersistedState | null> {
    try {
      const hsRaw = await this.db.get(HARD_STATE_KEY);
      const snRaw = await this.db.get(SNAPSHOT_KEY);
      const snapshot: Snapshot = snRaw
        ? await this.readSnapshotFile(snRaw)
        : { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) };
      await this.removeSnapshotFilesExcept(this.snapFile);
      const snapIndex = snapshot.meta.index;
      this.snapIndex = snapIndex;
      let entries: Entry[] = [];
      this.segments = [];
      for await (const [k, v] of this.db.iterator({ gte: ENTRY_KEY_MIN, lt: ENTRY_KEY_MAX })) {
        const first = Number(k.readBigUInt64BE(1));
        const seg = decodeSegment(v, first);
        const last = first + seg.length - 1;
        this.segments.push({ first, last });
        if (last <= snapIndex) continue; // covered by the snapshot
        const lastSoFar = entries.length > 0 ? entries[entries.length - 1]!.index : snapIndex;
        if (first > lastSoFar + 1) throw new CorruptRecordError(`log has a gap: entries ${lastSoFar + 1}..${first - 1} missing`);
        // a later segment overwrites the tail from its first index
        if (entries.length > 0 && first <= lastSoFar) entries = entries.slice(0, Math.max(0, first - entries[0]!.index));
        for (const e of seg) if (e.index > snapIndex) entries.push(e);
      }
      if (entries.length > 0 && entries[0]!.index !== snapIndex + 1) {
        throw new CorruptRecordError(`log starts at ${entries[0]!.index} but the snapshot ends at ${snapIndex}`);
      }
      if (!hsRaw && !snRaw && entries.length === 0) return null;
      const hardState = hsRaw ? decodeHardState(hsRaw) : { term: 0, vote: 0, commit: 0 };
      this.syncedTerm = hardState.term;
      this.syncedVote = hardState.vote;
      return { hardState, snapshot, entries };
    } catch (e) {
      if (e instanceof CorruptRecordError) {
        throw new Error(`raft storage at ${this.dir} is corrupted, refusing to load it: ${e.message}`);
      }
      throw e;
    }
  }

  /** Writes the initial state of a new node (bootstrap entries, empty snapshot). */
  async bootstrap(hardState: HardState, entries: Entry[]): Promise<void> {
    await this.save({
      hardState, entries, snapshot: null, snapshotRestore: false,
      committedEntries: [], messages: [], readStates: [], softState: null,
    });
  }

  /**
   * Persists one ready batch atomically and durably. A local snapshot (log compaction) is the
   * exception: it is written in the background (see persistLocalSnapshot), so the log keeps moving
   * while a large snapshot file is written and synced.
   */
  async save(rd: Ready): Promise<void> {
    if (this.snapError) throw this.snapError;
    const ops: Op[] = [];
    let oldSnapFile = '';
    if (rd.snapshot && !rd.snapshotRestore) {
      this.persistLocalSnapshot(rd.snapshot);
    } else if (rd.snapshot) {
      await this.snapChain; // a local snapshot still being written must not land after this one
      if (this.snapError) throw this.snapError;
      const s = rd.snapshot;
      this.snapIndex = s.meta.index;
      // the file is durable before the batch that points to it
      const name = await this.writeSnapshotFile(s);
      oldSnapFile = this.snapFile;
      this.snapFile = name;
      ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(s.meta, Buffer.from(name, 'utf8')) });
      // a snapshot received from the leader replaces the whole log
      for (const seg of this.segments) ops.push({ type: 'del', key: segmentKey(seg.first) });
      this.segments = [];
    }
    const n = rd.entries.length;
    if (n > 0) {
      const first = rd.entries[0]!.index;
      const last = rd.entries[n - 1]!.index;
      // segments from this index on held entries of a deposed leader: they must not survive a restart
      const keep: { first: number; last: number }[] = [];
      for (const seg of this.segments) {
        if (seg.first >= first) {
          if (seg.first !== first) ops.push({ type: 'del', key: segmentKey(seg.first) });
        } else {
          keep.push({ first: seg.first, last: Math.min(seg.last, first - 1) });
        }
      }
      keep.push({ first, last });
      this.segments = keep;
      ops.push({ type: 'put', key: segmentKey(first), value: encodeSegment(rd.entries) });
    }
    let mustSync = ops.length > 0;
    const hs = rd.hardState;
    if (hs) {
      ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hs) });
      // term and vote must be durable before we act on them; a lost commit index is only re-learned
      if (hs.term !== this.syncedTerm || hs.vote !== this.syncedVote) mustSync = true;
    }
    if (ops.length === 0) return;
    await this.db.batch(ops, { sync: mustSync });
    if (hs && mustSync) {
      this.syncedTerm = hs.term;
      this.syncedVote = hs.vote;
    }
    if (oldSnapFile && oldSnapFile !== this.snapFile) await unlink(join(this.snapDir, oldSnapFile)).catch(() => {});
  }

  /**
   * Compaction is only an optimisation of what is stored: until its pointer is written, the previous
   * snapshot and the whole log are still on disk and load as before, so the file can be written and
   * synced off the critical path. Then one batch points to it and deletes the segments it covers
   * (no new entry can land in those: they are committed). Snapshots are written in order; one that a
   * newer snapshot overtook is skipped. A failure surfaces on the next save().
   */
  private persistLocalSnapshot(s: Snapshot): void {
    this.snapChain = this.snapChain.then(async () => {
      if (this.snapError || s.meta.index <= this.snapIndex) return;
      const name = await this.writeSnapshotFile(s);
      const ops: Op[] = [{ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(s.meta, Buffer.from(name, 'utf8')) }];
      const keep: { first: number; last: number }[] = [];
      for (const seg of this.segments) {
        if (seg.last <= s.meta.index) ops.push({ type: 'del', key: segmentKey(seg.first) });
        else keep.push(seg);
      }
      this.segments = keep;
      await this.db.batch(ops, { sync: true });
      this.snapIndex = s.meta.index;
      const old = this.snapFile;
      this.snapFile = name;
      if (old && old !== name) await unlink(join(this.snapDir, old)).catch(() => {});
    }).catch((e: unknown) => {
      this.snapError = new Error(`raft storage at ${this.dir}: writing snapshot ${s.meta.index} failed: ${(e as Error).message}`);
    });
  }

  private async writeSnapshotFile(s: Snapshot): Promise<string> {
    const name = `snap-${s.meta.term}-${s.meta.index}.bin`;
    const tmp = join(this.snapDir, `${name}.tmp`);
    const f = await openFile(tmp, 'w');
    try {
      await f.writev([snapshotHeader(s.meta, s.data), s.data]);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, join(this.snapDir, name));
    const d = await openFile(this.snapDir, 'r');
    try {
      await d.sync(); // the rename itself must survive a crash
    } finally {
      await d.close();
    }
    return name;
  }

  private async readSnapshotFile(pointer: Uint8Array): Promise<Snapshot> {
    const p = decodeSnapshot(pointer);
    const name = Buffer.from(p.data).toString('utf8');
    let raw: Buffer;
    try {
      raw = await readFile(join(this.snapDir, name));
    } catch {
      throw new CorruptRecordError(`snapshot file ${name} is missing`);
    }
    const s = decodeSnapshot(raw);
    if (s.meta.index !== p.meta.index || s.meta.term !== p.meta.term) throw new CorruptRecordError(`snapshot file ${name} does not match its record`);
    this.snapFile = name;
    return { meta: s.meta, data: s.data };
  }

  /** Files of snapshots that were written but never committed by a batch (a crash in between). */
  private async removeSnapshotFilesExcept(keep: string): Promise<void> {
    for (const f of await readdir(this.snapDir)) {
      if (f !== keep) await unlink(join(this.snapDir, f)).catch(() => {});
    }
  }

  /**
   * Proposal ids: every id up to the stored value may have been used by an earlier life of this node,
   * whose proposals can still be in the log (or still reach it), so a new life continues above it.
   * Returns the highest id reserved so far (ids above it are free); reserve() moves it up durably.
   */
  async reservedProposalIds(): Promise<number | null> {
    const raw = await this.db.get(PROPOSAL_IDS_KEY);
    if (!raw) return null;
    try {
      return decodeProposalIds(raw);
    } catch (e) {
      if (e instanceof CorruptRecordError) throw new Error(`raft storage at ${this.dir} is corrupted, refusing to load it: ${e.message}`);
      throw e;
    }
  }

  /** Durably records that ids up to `upTo` may be used: they are never handed out again after a restart. */
  async reserveProposalIds(upTo: number): Promise<void> {
    await this.db.put(PROPOSAL_IDS_KEY, encodeProposalIds(upTo), { sync: true });
  }

  /** Test hooks: raw access to the segment stored under `first`. */
  async putRawSegment(first: number, value: Buffer): Promise<void> {
    await this.db.put(segmentKey(first), value);
  }

  async getRawSegment(first: number): Promise<Buffer | undefined> {
    return this.db.get(segmentKey(first));
  }

  async close(): Promise<void> {
    await this.snapChain;
    await this.db.close();
  }
}
