import { describe, expect, it } from 'vitest';
import { bootstrapEntries } from './confchange.js';
import { Raft } from './raft.js';
import { seededRandom } from './rand.js';
import { MsgType, Role, newMessage, type Message, type Ready } from './types.js';

function makeNode(id: number, drops: string[] = []): Raft {
  return new Raft(
    { id, electionTicks: 10, heartbeatTicks: 1, random: seededRandom(id), onDrop: (r) => drops.push(r) },
    {
      hardState: { term: 1, vote: 0, commit: 3 },
      snapshot: { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) },
      entries: bootstrapEntries([1, 2, 3]),
    },
  );
}

/** Drives a fully connected, lossless cluster until no node has work left. */
function settle(nodes: Map<number, Raft>): void {
  for (let round = 0; round < 1000; round++) {
    const batch: Message[] = [];
    for (const n of nodes.values()) {
      if (!n.hasReady()) continue;
      const rd: Ready = n.ready();
      batch.push(...rd.messages);
      n.advance(rd);
    }
    if (batch.length === 0) return;
    for (const m of batch) nodes.get(m.to)?.step(m);
  }
}

function cluster(): Map<number, Raft> {
  const nodes = new Map([1, 2, 3].map((id) => [id, makeNode(id)] as const));
  settle(nodes);
  nodes.get(1)!.step(newMessage(MsgType.Hup, 1, 1, 0));
  settle(nodes);
  return nodes;
}

describe('raft core', () => {
  it('elects a leader with pre-vote and commits its no-op', () => {
    const nodes = cluster();
    const l = nodes.get(1)!;
    expect(l.role).toBe(Role.Leader);
    expect(l.term).toBe(2); // pre-vote did not bump the term; the real election did once
    for (const n of nodes.values()) expect(n.log.committed).toBe(4);
  });

  it('counts the leader\'s own copy only once persisted, and hands out commits learned during a write', () => {
    const nodes = cluster();
    const l = nodes.get(1)!;
    const f2 = nodes.get(2)!;
    // batch A (entry 5) is persisted; batch B (entry 6) is taken and its write is in flight
    l.propose(new Uint8Array([5]));
    const a = l.ready();
    l.advance(a);
    l.propose(new Uint8Array([6]));
    const b = l.ready();
    expect(b.entries.map((e) => e.index)).toEqual([6]);
    // follower 2 persisted and acknowledges both entries while B is being written
    for (const m of [...a.messages, ...b.messages].filter((x) => x.to === 2)) f2.step(m);
    const fr = f2.ready();
    f2.advance(fr);
    for (const m of fr.messages) if (m.to === 1) l.step(m);
    // 5 is on the leader's disk and on 2's: committed and appliable now; 6 only on 2's: not committed
    expect(l.log.committed).toBe(5);
    expect(l.takeStableCommitted().map((e) => e.index)).toEqual([5]);
    expect(l.takeStableCommitted()).toEqual([]);
    l.advance(b); // B persisted: 6 now counts the leader's copy
    expect(l.log.committed).toBe(6);
    const c = l.ready();
    expect(c.committedEntries.map((e) => e.index)).toEqual([6]);
    l.advance(c);
  });

  it('replicates proposals, and followers forward theirs to the leader', () => {
    const nodes = cluster();
    const res = nodes.get(1)!.propose(new Uint8Array([1]));
    expect(res).toEqual({ ok: true, index: 5 });
    expect(nodes.get(2)!.propose(new Uint8Array([2]))).toEqual({ ok: true, index: 0 });
    settle(nodes);
    for (const n of nodes.values()) {
      expect(n.log.committed).toBe(6);
      expect(n.log.entry(6)!.data[0]).toBe(2);
    }
  });

  it('answers ReadIndex after a heartbeat round, on leader and follower', () => {
    const nodes = cluster();
    nodes.get(1)!.readIndex('r1');
    nodes.get(3)!.readIndex('r3');
    const seen: string[] = [];
    for (let round = 0; round < 20; round++) {
      for (const n of nodes.values()) {
        if (!n.hasReady()) continue;
        const rd = n.ready();
        for (const rs of rd.readStates) seen.push(`${rs.readCtx}@${rs.index}`);
        for (const m of rd.messages) nodes.get(m.to)!.step(m);
        n.advance(rd);
      }
    }
    expect(seen.sort()).toEqual(['r1@4', 'r3@4']);
  });

  it('transfers leadership with TimeoutNow', () => {
    const nodes = cluster();
    nodes.get(1)!.transferLeader(3);
    settle(nodes);
    expect(nodes.get(3)!.role).toBe(Role.Leader);
    expect(nodes.get(1)!.role).toBe(Role.Follower);
  });

  it('drops malformed, unknown-peer and stale messages with a reason, without throwing', () => {
    const drops: string[] = [];
    const n = makeNode(1, drops);
    settle(new Map([[1, n]]));
    const bad: unknown[] = [
      { ...newMessage(MsgType.App, 2, 1, 5), index: -1 },
      { ...newMessage(MsgType.App, 2, 1, 5), entries: [{ term: 9, index: 7, type: 0, data: new Uint8Array() }] },
      { ...newMessage(MsgType.App, 2, 1, 5), entries: 'x' },
      { ...newMessage(99 as MsgType, 2, 1, 5) },
      { ...newMessage(MsgType.Vote, 0, 1, 5) },
      { ...newMessage(MsgType.Vote, 2, 7, 5) },
      { ...newMessage(MsgType.Snap, 2, 1, 5), snap: { meta: { index: 3, term: 1, conf: null }, offset: 0, total: 1, data: new Uint8Array(1) } },
      { ...newMessage(MsgType.Snap, 2, 1, 5), snap: { meta: { index: 3, term: 1, conf: { voters: [], learners: [] } }, offset: 5, total: 1, data: new Uint8Array(1) } },
      null,
    ];
    for (const m of bad) expect(() => n.step(m as Message)).not.toThrow();
    expect(drops.filter((d) => d.startsWith('malformed')).length).toBe(bad.length);
    n.step(newMessage(MsgType.Vote, 9, 1, 5));
    expect(drops).toContain('unknown peer');
    n.step(newMessage(MsgType.Heartbeat, 2, 1, 3));
    const term = n.term;
    n.step(newMessage(MsgType.VoteResp, 2, 1, term - 1 >= 1 ? term - 1 : 0));
    expect(n.term).toBe(term);
  });

  it('refuses a second conf change until the first is applied', () => {
    const nodes = cluster();
    const l = nodes.get(1)!;
    expect(l.proposeConfChange({ op: 2, node: 4 }).ok).toBe(true);
    expect(l.proposeConfChange({ op: 1, node: 5 })).toEqual({ ok: false, reason: 'another conf change is not yet applied' });
  });
});
