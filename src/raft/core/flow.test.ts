import { describe, expect, it } from 'vitest';
import { bootstrapEntries } from './confchange.js';
import { ProgressState } from './progress.js';
import { Raft } from './raft.js';
import { seededRandom } from './rand.js';
import { MsgType, Role, newMessage, type Message } from './types.js';

/**
 * The leader's flow control (probe/replicate, inflight window) when the network duplicates and
 * reorders messages: acknowledgements may arrive twice, late, or before the append they follow.
 */

function makeNode(id: number): Raft {
  return new Raft(
    { id, electionTicks: 10, heartbeatTicks: 1, random: seededRandom(id), maxInflight: 4, maxMsgEntries: 2 },
    {
      hardState: { term: 1, vote: 0, commit: 3 },
      snapshot: { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) },
      entries: bootstrapEntries([1, 2, 3]),
    },
  );
}

/** Drains every node's ready batch; returns the messages they sent. */
function drainAll(nodes: Map<number, Raft>): Message[] {
  const out: Message[] = [];
  for (const n of nodes.values()) {
    if (!n.hasReady()) continue;
    const rd = n.ready();
    out.push(...rd.messages);
    n.advance(rd);
  }
  return out;
}

/** Delivers until quiet; messages to `holdFor` are collected in `held` instead of delivered. */
function settle(nodes: Map<number, Raft>, holdFor = 0, held: Message[] = []): void {
  for (let round = 0; round < 1000; round++) {
    const batch = drainAll(nodes);
    if (batch.length === 0) return;
    for (const m of batch) {
      if (m.to === holdFor) held.push(m);
      else nodes.get(m.to)!.step(m);
    }
  }
  throw new Error('did not settle');
}

function cluster(): Map<number, Raft> {
  const nodes = new Map([1, 2, 3].map((id) => [id, makeNode(id)] as const));
  settle(nodes);
  nodes.get(1)!.step(newMessage(MsgType.Hup, 1, 1, 0));
  settle(nodes);
  return nodes;
}

function progressOf(l: Raft, id: number) {
  return l.status().progress.get(id)!;
}

describe('raft flow control under duplication and reordering', () => {
  it('appends delivered backwards and acknowledged twice, in any order, leave an empty window', () => {
    const nodes = cluster();
    const l = nodes.get(1)!;
    const f = nodes.get(2)!;
    // three appends to 2 in flight at once (replicate state pipelines them); 3 gets its own promptly
    const toF: Message[] = [];
    for (let i = 0; i < 3; i++) {
      l.proposeBatch([new Uint8Array([i, 0]), new Uint8Array([i, 1])]);
      settle(nodes, 2, toF);
    }
    expect(toF.filter((m) => m.type === MsgType.App && m.entries.length > 0).length).toBe(3);
    expect(progressOf(l, 2).inflight).toBe(3);

    // the follower sees them last-first, each twice: the early ones are rejected (gap), the later
    // copies accepted; every answer goes back twice, newest first
    const answers: Message[] = [];
    for (const m of [...toF].reverse().flatMap((m) => [m, { ...m }])) {
      f.step(m);
      answers.push(...drainAll(new Map([[2, f]])));
    }
    expect(answers.some((a) => a.reject)).toBe(true);
    for (const a of [...answers].reverse().flatMap((a) => [a, { ...a }])) l.step(a);
    settle(nodes);

    const pr = progressOf(l, 2);
    expect(pr.match).toBe(l.log.lastIndex());
    expect(pr.state).toBe(ProgressState.Replicate);
    expect(pr.inflight).toBe(0);
    // and the window still works: a new entry reaches 2 right away
    l.propose(new Uint8Array([9]));
    settle(nodes);
    expect(f.log.lastIndex()).toBe(l.log.lastIndex());
    expect(f.log.committed).toBe(l.log.lastIndex());
  });

  it('a stale rejection arriving after the peer caught up does not knock it back to probing', () => {
    const nodes = cluster();
    const l = nodes.get(1)!;
    l.propose(new Uint8Array([1]));
    settle(nodes);
    const last = l.log.lastIndex();
    const stale = newMessage(MsgType.AppResp, 2, 1, l.term);
    stale.reject = true;
    stale.index = last - 1; // answers an append older than what 2 has since acknowledged
    stale.rejectHint = last - 2;
    l.step(stale);
    expect(progressOf(l, 2)).toMatchObject({ state: ProgressState.Replicate, match: last, next: last + 1, inflight: 0 });
  });

  it('converges once proposals stop, whatever the duplication and reordering before', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = seededRandom(seed);
      const nodes = cluster();
      let pool: Message[] = [];
      const round = (busy: boolean) => {
        // proposals go to whoever leads now; followers would forward them anyway
        const lead = [...nodes.values()].find((n) => n.role === Role.Leader);
        if (busy && lead && rnd() < 0.5) lead.propose(new Uint8Array([Math.floor(rnd() * 256)]));
        if (rnd() < 0.3) for (const n of nodes.values()) n.tick();
        pool.push(...drainAll(nodes));
        // deliver a random half of what is in flight, in random order; while busy, some twice
        const keep: Message[] = [];
        const now: Message[] = [];
        for (const m of pool) (rnd() < 0.5 ? now : keep).push(m);
        for (let i = now.length - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [now[i], now[j]] = [now[j]!, now[i]!];
        }
        for (const m of now) {
          if (busy && rnd() < 0.2) keep.push({ ...m });
          nodes.get(m.to)!.step(m);
        }
        pool = keep;
      };
      for (let r = 0; r < 300; r++) round(true);
      let quiet = 0;
      const done = () => {
        const lead = [...nodes.values()].find((n) => n.role === Role.Leader);
        if (!lead || lead.log.committed !== lead.log.lastIndex()) return false;
        return [...nodes.values()].every((n) => n.log.lastIndex() === lead.log.lastIndex() && n.log.committed === lead.log.committed);
      };
      while (!done() && quiet < 500) {
        round(false);
        quiet++;
      }
      expect(done(), `seed ${seed}`).toBe(true);
    }
  });
});
