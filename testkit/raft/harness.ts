import { checkKvHistory, type KvInput, type KvOutput, type Operation } from '../linearizability/linearizability.js';
import { bootstrapEntries } from '../../src/raft/core/confchange.js';
import { Raft, appliableBeforePersist, sendableBeforePersist } from '../../src/raft/core/raft.js';
import { seededRandom } from '../../src/raft/core/rand.js';
import {
  ConfChangeOp, EntryType, Role,
  type Entry, type HardState, type Message, type NodeId, type Ready, type Snapshot,
} from '../../src/raft/core/types.js';
import { KvMachine, decodeCommand, encodeCommand, type KvCommand } from './kv.js';

/**
 * A deterministic simulation of a Raft cluster over the pure core: one seeded random source decides
 * every delay, loss, duplication, partition, crash, client request and membership change, so a seed
 * replays a schedule exactly. Only what a ready batch said to persist survives a crash.
 */
export interface SimParams {
  seed: number;
  steps: number;
  loss: number;
  dup: number;
  maxDelay: number;
  crashRate: number;
  partitionRate: number;
  confRate: number;
  compactRate: number;
  transferRate: number;
  clients: number;
  /** probability per time unit that a client issues a request */
  clientRate: number;
}

export interface SimResult {
  ok: boolean;
  error?: string;
  commits: number;
  ops: number;
  completed: number;
  leaders: number;
  snapshotsSent: number;
  /** steps the quiet phase took to converge (how close a schedule came to the limit) */
  quietSteps: number;
}

const TICK = 10; // time units per tick
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
const KEYS = ['a', 'b', 'c'];
const MAX_NODES = 5;
/** limit of the quiet phase: converging takes a few hundred steps at most (see SimResult.quietSteps) */
const QUIET_STEPS = 3000;

class InvariantError extends Error {}

interface ClientOp {
  op: Operation<KvInput, KvOutput>;
  client: number;
  deadline: number;
  done: boolean;
}

class SimNode {
  raft: Raft | null = null;
  // durable
  hard: HardState = { term: 0, vote: 0, commit: 0 };
  snap: Snapshot;
  log: Entry[] = [];
  // volatile
  sm = new KvMachine();
  applied = 0;
  waiting = new Map<string, ClientOp>();
  readsPending = new Map<string, ClientOp>();
  readsReady: { index: number; op: ClientOp }[] = [];
  restarts = 0;
  /** voters after the last advance, and before the last membership change (for the durability check) */
  voters: NodeId[] | null = null;
  prevVoters: NodeId[] | null = null;
  /** a ready batch whose write is in flight: the node keeps stepping messages meanwhile */
  writing: Ready | null = null;
  nextTick = 0;
  started = false;

  constructor(readonly id: NodeId, voters: NodeId[]) {
    this.snap = { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    if (voters.length > 0) {
      this.log = bootstrapEntries(voters);
      this.hard = { term: 1, vote: 0, commit: voters.length };
    }
  }
}

export function runSchedule(p: SimParams): SimResult {
  const sim = new Simulation(p);
  try {
    sim.run();
    return sim.result(true);
  } catch (e) {
    // a crash of the code under test is a failure of the schedule too (and must be replayable)
    const msg = e instanceof InvariantError ? e.message : `exception: ${(e as Error).stack ?? String(e)}`;
    return sim.result(false, msg);
  }
}

class Simulation {
  private readonly rnd: () => number;
  private now = 0;
  private nodes = new Map<NodeId, SimNode>();
  private net: { m: Message; at: number }[] = [];
  private cut = new Set<string>();
  private leaders = new Map<number, NodeId>();
  /** index -> entry known committed anywhere (term + data) */
  private committed: (Entry | undefined)[] = [];
  private committedTo = new Map<NodeId, number>();
  private ops: ClientOp[] = [];
  private clientBusy: boolean[];
  private opSeq = 0;
  private proposedConf = new Set<NodeId>();
  private snapshotsSent = 0;
  private quiet = false;
  private quietSteps = 0;
  private loss: number;

  constructor(private readonly p: SimParams) {
    this.rnd = seededRandom(p.seed);
    this.loss = p.loss;
    this.clientBusy = new Array(p.clients).fill(false);
    for (let id = 1; id <= MAX_NODES; id++) {
      const n = new SimNode(id, id <= 3 ? [1, 2, 3] : []);
      this.nodes.set(id, n);
      if (id <= 3) this.start(n);
    }
  }

  result(ok: boolean, error?: string): SimResult {
    const r: SimResult = {
      ok, commits: this.committed.length, ops: this.ops.length,
      completed: this.ops.filter((o) => o.done).length, leaders: this.leaders.size, snapshotsSent: this.snapshotsSent,
      quietSteps: this.quietSteps,
    };
    if (error !== undefined) r.error = `${error} (at t=${this.now})`;
    return r;
  }

  run(): void {
    for (let s = 0; s < this.p.steps; s++) this.step();
    // quiet phase: heal, restart, no loss, no new client requests; the cluster must converge.
    // Requests stop because convergence (every member applied the leader's whole log) is a property
    // of an idle cluster: clients that keep proposing keep the newest entry in flight, and with
    // long delays a closed loop of clients can go thousands of steps without an idle moment while
    // replication is perfectly healthy. Requests already issued may still complete.
    this.quiet = true;
    this.loss = 0;
    this.cut.clear();
    for (const n of this.nodes.values()) if (n.started && !n.raft) this.restart(n);
    while (this.quietSteps < QUIET_STEPS && !this.converged()) {
      this.step();
      this.quietSteps++;
    }
    this.checkLogMatching();
    if (!this.converged()) throw new InvariantError('cluster did not converge after healing: ' + this.describe());
    const bad = checkKvHistory(this.ops.map((o) => o.op));
    if (bad !== null) throw new InvariantError(`history of key ${bad} is not linearizable`);
  }

  private step(): void {
    this.now++;
    const r = this.rnd;
    // ticks
    for (const n of this.nodes.values()) {
      if (!n.raft || this.now < n.nextTick) continue;
      n.nextTick = this.now + TICK - 2 + Math.floor(r() * 5);
      n.raft.tick();
    }
    // deliveries (random choice among due messages reorders them)
    let due = 0;
    for (const x of this.net) if (x.at <= this.now) due++;
    while (due > 0) {
      let k = Math.floor(r() * this.net.length);
      while (this.net[k]!.at > this.now) k = (k + 1) % this.net.length;
      const x = this.net[k]!;
      this.net[k] = this.net[this.net.length - 1]!;
      this.net.pop();
      due--;
      this.deliver(x.m);
    }
    if (!this.quiet) this.chaos();
    if (!this.quiet) this.clientStep();
    // each node persists/sends/applies its ready with some probability: a crash may hit in between
    for (const n of this.nodes.values()) {
      if (n.raft && (this.quiet || r() < 0.8)) this.drain(n);
    }
    this.checkStep();
    if (this.now % 32 === 0) this.checkLogMatching();
    this.expireClients();
  }

  private deliver(m: Message): void {
    const dst = this.nodes.get(m.to);
    if (!dst?.raft) return;
    if (this.cut.has(`${m.from}-${m.to}`)) return;
    if (this.rnd() < this.loss) return;
    if (this.rnd() < this.p.dup && !this.quiet) this.enqueue({ ...m });
    dst.raft.step(m);
    // as the node loop does: commits learned during a write apply without waiting for it
    if (dst.writing) for (const e of dst.raft.takeStableCommitted()) this.apply(dst, e);
  }

  private enqueue(m: Message): void {
    this.net.push({ m, at: this.now + 1 + Math.floor(this.rnd() * this.p.maxDelay) });
  }

  private chaos(): void {
    const r = this.rnd;
    const p = this.p;
    const live = [...this.nodes.values()].filter((n) => n.raft);
    if (r() < p.crashRate && live.length > 0) this.crash(pick(r, live));
    for (const n of this.nodes.values()) if (n.started && !n.raft && r() < 0.01) this.restart(n);
    if (r() < p.partitionRate) this.partition();
    if (this.cut.size > 0 && r() < 0.004) this.cut.clear();
    if (r() < p.confRate) this.confChange();
    const up = [...this.nodes.values()].filter((n) => n.raft);
    if (r() < p.compactRate && up.length > 0) this.compact(pick(r, up));
    if (r() < p.transferRate) {
      const l = this.leader();
      if (l) l.raft!.transferLeader(pick(r, l.raft!.confState().voters));
    }
  }

  private partition(): void {
    this.cut.clear();
    const ids = [...this.nodes.keys()];
    const side = new Map<NodeId, boolean>();
    if (this.rnd() < 0.5) {
      const iso = pick(this.rnd, ids);
      for (const id of ids) side.set(id, id === iso);
    } else {
      for (const id of ids) side.set(id, this.rnd() < 0.5);
    }
    for (const a of ids) for (const b of ids) if (side.get(a) !== side.get(b)) this.cut.add(`${a}-${b}`);
  }

  private confChange(): void {
    const l = this.leader();
    if (!l) return;
    const conf = l.raft!.confState();
    const r = this.rnd();
    const fresh = [...this.nodes.keys()].filter((id) => !this.proposedConf.has(id) && id > 3);
    if (r < 0.4 && fresh.length > 0) {
      const id = fresh[0]!;
      this.proposedConf.add(id);
      const n = this.nodes.get(id)!;
      if (!n.started) this.start(n);
      l.raft!.proposeConfChange({ op: ConfChangeOp.AddLearner, node: id });
    } else if (r < 0.7 && conf.learners.length > 0) {
      l.raft!.proposeConfChange({ op: ConfChangeOp.AddVoter, node: pick(this.rnd, conf.learners) });
    } else if (conf.voters.length > 3) {
      const id = pick(this.rnd, conf.voters);
      this.proposedConf.add(id);
      l.raft!.proposeConfChange({ op: ConfChangeOp.Remove, node: id });
    }
  }

  private compact(n: SimNode): void {
    const raft = n.raft!;
    if (n.applied <= raft.latestSnapshot().meta.index + 3) return;
    raft.compact(n.applied, n.sm.snapshot(), Math.floor(this.rnd() * 4));
  }

  // ------------------------------------------------------------ node lifecycle

  private start(n: SimNode): void {
    n.started = true;
    this.boot(n);
  }

  private boot(n: SimNode): void {
    n.raft = new Raft(
      {
        id: n.id, electionTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS,
        random: seededRandom(this.p.seed * 7919 + n.id * 104729 + n.restarts),
        preVote: true, checkQuorum: true, maxInflight: 4, maxMsgEntries: 8, snapshotChunkBytes: 200,
      },
      { hardState: { ...n.hard }, snapshot: n.snap, entries: n.log.slice() },
    );
    n.sm = new KvMachine();
    n.sm.restore(n.snap.data);
    n.applied = n.snap.meta.index;
    n.nextTick = this.now + 1 + Math.floor(this.rnd() * TICK);
    this.committedTo.set(n.id, n.snap.meta.index);
  }

  private crash(n: SimNode): void {
    n.raft = null;
    n.writing = null; // lost with the process
    n.voters = n.prevVoters = null;
    n.restarts++;
    n.waiting.clear();
    n.readsPending.clear();
    n.readsReady = [];
  }

  private restart(n: SimNode): void {
    this.boot(n);
  }

  /**
   * Persist, then send, then apply: the order a real node must follow. As in the real node loop, a
   * write takes time: it starts (a leader's appends leave, already-durable commits are applied) and
   * completes some steps later, while the node keeps receiving and stepping messages; a crash in
   * between loses it.
   */
  private drain(n: SimNode): void {
    if (n.writing) {
      if (!this.quiet && this.rnd() < 0.5) return; // still being written
      this.finishWrite(n, n.writing);
      if (!n.raft) return;
    }
    const raft = n.raft!;
    if (!raft.hasReady()) return;
    const rd: Ready = raft.ready();
    // a leader's appends may leave before its own write; sometimes it crashes right there
    const early = rd.messages.filter(sendableBeforePersist);
    for (const m of early) this.enqueue(m);
    // committed entries already durable from earlier batches are applied during the write
    const durable = appliableBeforePersist(rd);
    for (let i = 0; i < durable; i++) this.apply(n, rd.committedEntries[i]!);
    if ((early.length > 0 || durable > 0) && !this.quiet && this.rnd() < this.p.crashRate * 5) {
      this.crash(n);
      return;
    }
    if (this.quiet || this.rnd() < 0.5) this.finishWrite(n, rd);
    else n.writing = rd;
  }

  private finishWrite(n: SimNode, rd: Ready): void {
    const raft = n.raft!;
    n.writing = null;
    if (rd.snapshot) {
      n.snap = rd.snapshot;
      if (rd.snapshotRestore) n.log = [];
      else n.log = n.log.filter((e) => e.index > rd.snapshot!.meta.index);
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      const keep = first - n.snap.meta.index - 1;
      if (keep < n.log.length) n.log.length = Math.max(0, keep);
      for (const e of rd.entries) n.log.push(e);
    }
    if (rd.hardState) n.hard = { ...rd.hardState };
    for (const m of rd.messages) {
      if (sendableBeforePersist(m)) continue;
      if (m.type === 11) this.snapshotsSent++;
      this.enqueue(m);
    }
    if (rd.snapshot && rd.snapshotRestore) {
      n.sm.restore(rd.snapshot.data);
      n.applied = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) this.apply(n, e);
    for (const rs of rd.readStates) {
      const op = n.readsPending.get(rs.readCtx);
      if (!op) continue;
      n.readsPending.delete(rs.readCtx);
      n.readsReady.push({ index: rs.index, op });
    }
    raft.advance(rd);
    const voters = raft.confState().voters;
    if (n.voters && voters.join() !== n.voters.join()) n.prevVoters = n.voters;
    n.voters = voters;
    this.serveReads(n);
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index <= n.applied) return;
    if (e.index !== n.applied + 1) throw new InvariantError(`node ${n.id} applies ${e.index} after ${n.applied}`);
    // state-machine safety: every node applies the same entry at an index
    const known = this.committed[e.index];
    if (known) {
      if (!sameEntry(known, e)) throw new InvariantError(`node ${n.id} applied a different entry at ${e.index}`);
    } else {
      this.checkDurableOnQuorum(n, e);
      this.committed[e.index] = e;
    }
    n.applied = e.index;
    if (e.type !== EntryType.Normal) return;
    const c = decodeCommand(e.data);
    if (!c) return;
    const out = n.sm.apply(c);
    const op = n.waiting.get(c.id);
    if (op) {
      n.waiting.delete(c.id);
      this.complete(op, c.op === 'get' ? out : null);
    }
  }

  /**
   * Durability of commits: when an entry is applied for the first time anywhere (the leader that
   * committed it, usually), a majority of the voters must already hold it in what survives a crash
   * (their persisted log or snapshot). Guards the leader writing its log in parallel with sending it.
   */
  private checkDurableOnQuorum(n: SimNode, e: Entry): void {
    const voters = n.raft!.confState().voters;
    if (voters.length === 0) return; // the bootstrap membership entries, committed by construction
    const held = (vs: NodeId[]): number => {
      let holders = 0;
      for (const id of vs) {
        const v = this.nodes.get(id)!;
        const d = v.log[e.index - v.snap.meta.index - 1];
        if (v.snap.meta.index >= e.index || (d && d.index === e.index && d.term === e.term)) holders++;
      }
      return holders;
    };
    const majority = (vs: NodeId[]): boolean => held(vs) >= (vs.length >> 1) + 1;
    // membership takes effect when applied, one voter at a time: the entry may have committed under
    // the membership before the latest change (whose majorities intersect every current majority)
    if (majority(voters) || (n.prevVoters && majority(n.prevVoters))) return;
    throw new InvariantError(`node ${n.id} applied entry ${e.index} (term ${e.term}) held durably by only ${held(voters)} of voters ${voters}`);
  }

  private serveReads(n: SimNode): void {
    if (n.readsReady.length === 0) return;
    const rest: { index: number; op: ClientOp }[] = [];
    for (const r of n.readsReady) {
      if (r.index <= n.applied) {
        const input = r.op.op.input;
        this.complete(r.op, n.sm.kv.get(input.key) ?? null);
      } else {
        rest.push(r);
      }
    }
    n.readsReady = rest;
  }

  // ------------------------------------------------------------ clients

  private clientStep(): void {
    if (this.rnd() > this.p.clientRate) return;
    const c = Math.floor(this.rnd() * this.p.clients);
    if (this.clientBusy[c]) return;
    const live = [...this.nodes.values()].filter((n) => n.raft);
    if (live.length === 0) return;
    const n = pick(this.rnd, live);
    const key = pick(this.rnd, KEYS);
    const id = `c${c}-${++this.opSeq}`;
    const isPut = this.rnd() < 0.5;
    const op: ClientOp = {
      op: {
        input: isPut ? { op: 'put', key, value: id } : { op: 'get', key },
        output: undefined, call: this.now * 2, ret: Infinity,
      },
      client: c, deadline: this.now + 400, done: false,
    };
    const raft = n.raft!;
    if (isPut || this.rnd() < 0.3) {
      const cmd: KvCommand = isPut ? { id, op: 'put', key, value: id } : { id, op: 'get', key };
      const res = raft.propose(encodeCommand(cmd));
      if (!res.ok) return; // refused: it never entered any log
      n.waiting.set(id, op);
    } else {
      n.readsPending.set(id, op);
      raft.readIndex(id);
    }
    this.ops.push(op);
    this.clientBusy[c] = true;
  }

  private complete(op: ClientOp, out: string | null): void {
    if (op.done || op.deadline < this.now) return;
    op.done = true;
    op.op.output = out;
    op.op.ret = this.now * 2 + 1;
    this.clientBusy[op.client] = false;
  }

  private expireClients(): void {
    for (const o of this.ops) {
      if (!o.done && o.deadline === this.now) this.clientBusy[o.client] = false; // gives up, stays pending
    }
  }

  // ------------------------------------------------------------ invariants

  private checkStep(): void {
    for (const n of this.nodes.values()) {
      const raft = n.raft;
      if (!raft) continue;
      // committed entries never change
      const log = raft.log;
      const from = Math.max(this.committedTo.get(n.id) ?? 0, log.snapIndex);
      for (let i = from + 1; i <= log.committed; i++) {
        const e = log.entry(i)!;
        const known = this.committed[i];
        if (known && !sameEntry(known, e)) throw new InvariantError(`node ${n.id} committed a different entry at ${i}`);
        if (!known) this.committed[i] = e;
      }
      if (log.committed > (this.committedTo.get(n.id) ?? 0)) this.committedTo.set(n.id, log.committed);
      if (raft.role !== Role.Leader) continue;
      const prev = this.leaders.get(raft.term);
      if (prev === undefined) {
        this.leaders.set(raft.term, n.id);
        // leader completeness: a new leader holds every entry committed so far
        for (let i = log.snapIndex + 1; i < this.committed.length; i++) {
          const known = this.committed[i];
          if (!known) continue;
          const e = log.entry(i);
          if (!e || !sameEntry(known, e)) throw new InvariantError(`leader ${n.id} of term ${raft.term} lacks committed entry ${i}: ${this.describe()}`);
        }
      } else if (prev !== n.id) {
        throw new InvariantError(`two leaders in term ${raft.term}: ${prev} and ${n.id}`);
      }
    }
  }

  /** Log matching: if two logs hold an entry with the same index and term, they agree up to it. */
  private checkLogMatching(): void {
    const rafts = [...this.nodes.values()].filter((n) => n.raft).map((n) => n.raft!.log);
    for (let a = 0; a < rafts.length; a++) {
      for (let b = a + 1; b < rafts.length; b++) {
        const x = rafts[a]!;
        const y = rafts[b]!;
        const lo = Math.max(x.snapIndex, y.snapIndex) + 1;
        const hi = Math.min(x.lastIndex(), y.lastIndex());
        let matchFrom = -1;
        for (let i = hi; i >= lo; i--) {
          if (x.term(i) === y.term(i)) {
            matchFrom = i;
            break;
          }
        }
        for (let i = lo; i <= matchFrom; i++) {
          if (!sameEntry(x.entry(i)!, y.entry(i)!)) throw new InvariantError(`log matching violated at index ${i}`);
        }
      }
    }
  }

  private converged(): boolean {
    const l = this.leader();
    if (!l) return false;
    const raft = l.raft!;
    if (raft.log.committed < raft.log.lastIndex()) return false;
    const conf = raft.confState();
    for (const id of [...conf.voters, ...conf.learners]) {
      const n = this.nodes.get(id)!;
      if (!n.raft || n.applied !== l.applied) return false;
    }
    for (const id of [...conf.voters, ...conf.learners]) {
      const n = this.nodes.get(id)!;
      if (!sameMap(n.sm.kv, l.sm.kv)) throw new InvariantError(`node ${id} state differs from leader ${l.id} at the same applied index`);
    }
    return true;
  }

  private leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.raft?.role === Role.Leader && (!best || n.raft.term > best.raft!.term)) best = n;
    }
    return best;
  }

  private describe(): string {
    return [...this.nodes.values()]
      .filter((n) => n.started)
      .map((n) => {
        const s = n.raft?.status();
        if (!s) return `${n.id}:down`;
        let d = `${n.id}:${s.role}/t${s.term}/c${s.commit}/a${n.applied}/l${s.lastIndex}/v[${s.conf.voters}]/L[${s.conf.learners}]`;
        // a leader's flow control per peer, so a liveness failure shows which peer is stuck and why
        const prs = [...s.progress].filter(([id]) => id !== n.id);
        if (prs.length > 0) {
          const st = ['probe', 'replicate', 'snapshot'];
          d += '{' + prs.map(([id, p]) => `${id}:${st[p.state]}/m${p.match}/n${p.next}/i${p.inflight}${p.probeSent ? '/sent' : ''}`).join(' ') + '}';
        }
        return d;
      })
      .join(' ');
  }
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.term !== b.term || a.index !== b.index || a.type !== b.type || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
