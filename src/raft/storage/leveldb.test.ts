import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootstrapEntries } from '../core/confchange.js';
import type { Entry, Ready } from '../core/types.js';
import { entryOffsetInSegment } from './codec.js';
import { LevelRaftStorage } from './leveldb.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tsswarm-test-raftstore-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ent = (index: number, term: number, s: string): Entry => ({ index, term, type: 0, data: Buffer.from(s) });
const ready = (p: Partial<Ready>): Ready => ({
  hardState: null, entries: [], snapshot: null, snapshotRestore: false, committedEntries: [], messages: [], readStates: [], softState: null, ...p,
});

describe('LevelDB raft storage', () => {
  it('round-trips entries, hard state, truncation and snapshots across reopen', async () => {
    const dir = tmp();
    let s = await LevelRaftStorage.open(dir);
    expect(await s.load()).toBeNull();
    await s.bootstrap({ term: 1, vote: 0, commit: 3 }, bootstrapEntries([1, 2, 3]));
    await s.save(ready({ entries: [ent(4, 2, 'a'), ent(5, 2, 'b'), ent(6, 2, 'c')], hardState: { term: 2, vote: 1, commit: 5 } }));
    // a new leader overwrites 5.. with a shorter suffix: 6 must disappear
    await s.save(ready({ entries: [ent(5, 3, 'B')], hardState: { term: 3, vote: 2, commit: 5 } }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    let st = (await s.load())!;
    expect(st.hardState).toEqual({ term: 3, vote: 2, commit: 5 });
    expect(st.entries.map((e) => `${e.index}/${e.term}/${Buffer.from(e.data).toString()}`).slice(3)).toEqual(['4/2/a', '5/3/B']);
    // local compaction keeps the suffix
    await s.save(ready({ snapshot: { meta: { index: 4, term: 2, conf: { voters: [1, 2, 3], learners: [7] } }, data: Buffer.from('SM') } }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    st = (await s.load())!;
    expect(st.snapshot.meta).toEqual({ index: 4, term: 2, conf: { voters: [1, 2, 3], learners: [7] } });
    expect(Buffer.from(st.snapshot.data).toString()).toBe('SM');
    expect(st.entries.map((e) => e.index)).toEqual([5]);
    // a snapshot from the leader replaces the log
    await s.save(ready({ snapshot: { meta: { index: 9, term: 4, conf: { voters: [1, 2, 3], learners: [] } }, data: Buffer.from('X') }, snapshotRestore: true, entries: [ent(10, 4, 'z')] }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    st = (await s.load())!;
    expect(st.snapshot.meta.index).toBe(9);
    expect(st.entries.map((e) => e.index)).toEqual([10]);
    await s.close();
  });

  it('replays overlapping segments in write order (overwrites, shorter tails, compaction)', async () => {
    const dir = tmp();
    let s = await LevelRaftStorage.open(dir);
    await s.bootstrap({ term: 1, vote: 0, commit: 3 }, bootstrapEntries([1, 2, 3]));
    await s.save(ready({ entries: [4, 5, 6, 7, 8, 9, 10].map((i) => ent(i, 2, `a${i}`)) }));
    await s.save(ready({ entries: [ent(7, 3, 'b7'), ent(8, 3, 'b8')] }));
    await s.save(ready({ entries: [ent(9, 3, 'b9')] }));
    await s.save(ready({ entries: [ent(6, 4, 'c6')] }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    let st = (await s.load())!;
    expect(st.entries.slice(3).map((e) => `${e.index}/${Buffer.from(e.data).toString()}`)).toEqual(['4/a4', '5/a5', '6/c6']);
    await s.save(ready({ entries: [ent(7, 4, 'c7')] }));
    await s.save(ready({ snapshot: { meta: { index: 5, term: 2, conf: { voters: [1], learners: [] } }, data: Buffer.from('S') } }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    st = (await s.load())!;
    expect(st.entries.map((e) => `${e.index}/${Buffer.from(e.data).toString()}`)).toEqual(['6/c6', '7/c7']);
    await s.close();
  });

  it('writes local snapshots in the background, in order, never over a newer one', async () => {
    const dir = tmp();
    let s = await LevelRaftStorage.open(dir);
    await s.bootstrap({ term: 1, vote: 0, commit: 3 }, bootstrapEntries([1, 2, 3]));
    await s.save(ready({ entries: [4, 5, 6, 7, 8, 9, 10].map((i) => ent(i, 2, `a${i}`)) }));
    const conf = { voters: [1, 2, 3], learners: [] };
    // two compactions queued back to back while the log keeps growing
    await s.save(ready({ snapshot: { meta: { index: 5, term: 2, conf }, data: Buffer.alloc(4 << 20, 5) } }));
    await s.save(ready({ snapshot: { meta: { index: 7, term: 2, conf }, data: Buffer.from('S7') } }));
    await s.save(ready({ entries: [ent(11, 2, 'a11')] }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    let st = (await s.load())!;
    expect(st.snapshot.meta.index).toBe(7);
    expect(Buffer.from(st.snapshot.data).toString()).toBe('S7');
    expect(st.entries.map((e) => e.index)).toEqual([8, 9, 10, 11]);
    // a compaction still being written when the leader's snapshot arrives does not land after it
    await s.save(ready({ snapshot: { meta: { index: 9, term: 2, conf }, data: Buffer.alloc(4 << 20, 9) } }));
    await s.save(ready({ snapshot: { meta: { index: 12, term: 3, conf }, data: Buffer.from('S12') }, snapshotRestore: true, entries: [ent(13, 3, 'b13')] }));
    await s.close();
    s = await LevelRaftStorage.open(dir);
    st = (await s.load())!;
    expect(st.snapshot.meta.index).toBe(12);
    expect(Buffer.from(st.snapshot.data).toString()).toBe('S12');
    expect(st.entries.map((e) => e.index)).toEqual([13]);
    await s.close();
  });

  it('refuses to load a corrupted entry with a clear error', async () => {
    const dir = tmp();
    let s = await LevelRaftStorage.open(dir);
    await s.bootstrap({ term: 1, vote: 0, commit: 3 }, bootstrapEntries([1, 2, 3]));
    await s.save(ready({ entries: [ent(4, 2, 'hello'), ent(5, 2, 'world')] }));
    const raw = (await s.getRawSegment(4))!;
    const at = entryOffsetInSegment(raw, 4, 5) + 25; // first payload byte of entry 5
    raw[at] = raw[at]! ^ 0x01; // one flipped bit
    await s.putRawSegment(4, raw);
    await s.close();
    s = await LevelRaftStorage.open(dir);
    await expect(s.load()).rejects.toThrow(/corrupted, refusing to load it: entry 5: checksum mismatch/);
    await s.close();
  });

  it('shares one synced write per ready batch', async () => {
    const dir = tmp();
    const s = await LevelRaftStorage.open(dir);
    const many = Array.from({ length: 500 }, (_, i) => ent(i + 1, 1, 'x'.repeat(100)));
    const t0 = performance.now();
    await s.save(ready({ entries: many, hardState: { term: 1, vote: 0, commit: 0 } }));
    expect(performance.now() - t0).toBeLessThan(2000);
    await s.close();
  });

  it('keeps the proposal ids reserved across reopen', async () => {
    const dir = tmp();
    let s = await LevelRaftStorage.open(dir);
    expect(await s.reservedProposalIds()).toBeNull();
    await s.reserveProposalIds(65_536);
    await s.reserveProposalIds(2 ** 33 + 5);
    await s.close();
    s = await LevelRaftStorage.open(dir);
    expect(await s.reservedProposalIds()).toBe(2 ** 33 + 5);
    await s.close();
  });
});
