import { describe, expect, it } from 'vitest';
import { bootstrapEntries, decodeConfChange, encodeConfChange } from './confchange.js';
import { confAtEnd, forceNewCluster } from './force-new-cluster.js';
import { Raft } from './raft.js';
import { seededRandom } from './rand.js';
import { ConfChangeOp, EntryType, Role, type Entry, type Ready } from './types.js';

const emptySnapshot = { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) };

describe('force new cluster', () => {
  it('turns a member of a dead three-voter cluster into the only voter, keeping its whole log, and it leads alone', () => {
    const log: Entry[] = [
      ...bootstrapEntries([1, 2, 3]),
      { term: 2, index: 4, type: EntryType.Normal, data: new Uint8Array([1]) },
      { term: 2, index: 5, type: EntryType.ConfChange, data: encodeConfChange({ op: ConfChangeOp.AddLearner, node: 4 }) },
      // appended but not known to be committed here: it may have been acknowledged by the dead leader
      { term: 3, index: 6, type: EntryType.Normal, data: new Uint8Array([2]) },
    ];
    const hard = { term: 3, vote: 1, commit: 5 };
    const forced = forceNewCluster(2, hard, emptySnapshot, log, decodeConfChange, () => new Uint8Array(0));
    expect(forced.removed.sort()).toEqual([1, 3, 4]);
    expect(forced.hardState).toEqual({ term: 4, vote: 2, commit: 9 });
    expect(forced.entries.map((e) => [e.index, e.term])).toEqual([[7, 4], [8, 4], [9, 4]]);
    const all = [...log, ...forced.entries];
    expect(confAtEnd(emptySnapshot, all, decodeConfChange)).toEqual({ voters: [2], learners: [] });

    const raft = new Raft({ id: 2, electionTicks: 10, heartbeatTicks: 1, random: seededRandom(2) }, { hardState: forced.hardState, snapshot: emptySnapshot, entries: all });
    const applied: number[] = [];
    const drain = () => {
      while (raft.hasReady()) {
        const rd: Ready = raft.ready();
        for (const e of rd.committedEntries) applied.push(e.index);
        expect(rd.messages.filter((m) => m.to !== 2)).toEqual([]);
        raft.advance(rd);
      }
    };
    drain();
    expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let i = 0; i < 30 && raft.role !== Role.Leader; i++) { raft.tick(); drain(); }
    expect(raft.role).toBe(Role.Leader);
    expect(raft.propose(new Uint8Array([3])).ok).toBe(true);
    drain();
    expect(applied.at(-1)).toBeGreaterThan(9);
  });
});
