import { applyConfChange, cloneConf, decodeConfChange, encodeConfChange } from './confchange.js';
import { RaftLog } from './log.js';
import { Progress, ProgressState } from './progress.js';
import { validateMessage } from './validate.js';
import {
  ConfChangeOp, EMPTY_ENTRIES, EntryType, MsgType, NONE, Role, newMessage,
  type ConfChange, type ConfState, type DropHook, type Entry, type HardState, type Message,
  type NodeId, type ReadState, type Ready, type Snapshot, type SoftState,
} from './types.js';

export interface RaftConfig {
  id: NodeId;
  /** ticks without a leader before campaigning; the actual timeout is random in [electionTicks, 2*electionTicks) */
  electionTicks: number;
  heartbeatTicks: number;
  /** injected randomness in [0,1): the core never draws its own */
  random: () => number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** appends in flight per peer in Replicate state */
  maxInflight?: number;
  maxMsgEntries?: number;
  maxMsgBytes?: number;
  snapshotChunkBytes?: number;
  onDrop?: DropHook;
}

/** What survived on disk: the last snapshot (or the bootstrap membership at index 0), log and hard state. */
export interface RaftRestore {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  role: Role;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  conf: ConfState;
  progress: Map<NodeId, { match: number; next: number; state: number; inflight: number; probeSent: boolean }>;
  leadTransferee: NodeId;
}

export type ProposeResult = { ok: true; index: number } | { ok: false; reason: string };

interface PendingRead {
  index: number;
  seq: number;
  readCtx: string;
  from: NodeId;
}

/** Snapshot being received in chunks from the leader. */
interface IncomingSnapshot {
  index: number;
  term: number;
  total: number;
  received: number;
  parts: Uint8Array[];
}

/**
 * Messages of a ready batch that may leave before the batch is persisted: a leader's appends
 * (Raft thesis 10.2.1, the leader writes its log in parallel with replicating it). The leader counts
 * its own copy of an entry toward a commit only once advance() reports it persisted, so the commit
 * index never runs ahead of what a majority holds durably; followers that persisted first may
 * commit an entry before the leader's own write completes.
 */
export function sendableBeforePersist(m: Message): boolean {
  return m.type === MsgType.App;
}

/**
 * How many of a ready batch's committed entries may be applied before the batch is persisted: those
 * below its first new entry were written by earlier batches and are durable on a quorum. (Not when
 * the batch installs a snapshot: the state machine must load it first.)
 */
export function appliableBeforePersist(rd: Ready): number {
  if (rd.snapshot && rd.snapshotRestore) return 0;
  const ce = rd.committedEntries;
  if (rd.entries.length === 0) return ce.length;
  const firstNew = rd.entries[0]!.index;
  let n = 0;
  while (n < ce.length && ce[n]!.index < firstNew) n++;
  return n;
}

const CAMPAIGN_PRE = 0;
const CAMPAIGN_ELECTION = 1;
const CAMPAIGN_TRANSFER = 2;

/**
 * The Raft state machine: deterministic, no timers and no I/O. The caller drives it with tick(),
 * step(), propose(), and drains its effects with ready()/advance().
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = Role.Follower;
  readonly log: RaftLog;

  private conf: ConfState;
  /** membership after each applied conf change, to stamp snapshots with the membership at their index */
  private confHistory: { index: number; conf: ConfState }[];
  private prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId = NONE;
  /** a conf change at this index or below is not yet applied: no new one may be proposed */
  private pendingConfIndex = 0;

  private readSeq = 0;
  private pendingReads: PendingRead[] = [];
  /** ReadIndex requests held until the leader has committed an entry of its term */
  private deferredReads: { readCtx: string; from: NodeId }[] = [];
  private heartbeatPending = false;
  private appendPending = new Set<NodeId>();
  /** peers that get one append even when there is nothing new for them */
  private appendForced = new Set<NodeId>();

  private snapshot: Snapshot;
  private snapshotToPersist: Snapshot | null = null;
  private snapshotRestore = false;
  private incoming: IncomingSnapshot | null = null;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;
  /** a ready() was handed out and not yet advance()d */
  private readyOutstanding = false;

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly random: () => number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxInflight: number;
  private readonly maxMsgEntries: number;
  private readonly maxMsgBytes: number;
  private readonly chunkBytes: number;
  private readonly onDrop: DropHook;

  constructor(cfg: RaftConfig, restore: RaftRestore) {
    if (!(cfg.id > 0)) throw new Error('raft: id must be a positive integer');
    if (!(cfg.heartbeatTicks > 0 && cfg.electionTicks > cfg.heartbeatTicks)) {
      throw new Error('raft: need 0 < heartbeatTicks < electionTicks');
    }
    this.id = cfg.id;
    this.electionTicks = cfg.electionTicks;
    this.heartbeatTicks = cfg.heartbeatTicks;
    this.random = cfg.random;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxInflight = cfg.maxInflight ?? 256;
    this.maxMsgEntries = cfg.maxMsgEntries ?? 1024;
    this.maxMsgBytes = cfg.maxMsgBytes ?? 1 << 20;
    this.chunkBytes = cfg.snapshotChunkBytes ?? 1 << 20;
    this.onDrop = cfg.onDrop ?? (() => {});

    const snap = restore.snapshot;
    this.snapshot = snap;
    this.log = new RaftLog(snap.meta.index, snap.meta.term, restore.entries, restore.hardState.commit);
    this.term = restore.hardState.term;
    this.vote = restore.hardState.vote;
    this.conf = cloneConf(snap.meta.conf);
    this.confHistory = [{ index: snap.meta.index, conf: cloneConf(snap.meta.conf) }];
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.prevSoft = { lead: NONE, role: Role.Follower };
    this.rebuildProgress();
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- public inputs

  tick(): void {
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  /** Feeds a message from a peer (or a local one: Hup, Beat). Never throws on bad input. */
  step(m: Message): void {
    const bad = validateMessage(m, this.id);
    if (bad) return this.drop(bad, m);
    if (!this.knownSender(m)) return this.drop('unknown peer', m);
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.term && m.term !== 0) {
      return this.stepLowerTerm(m);
    }
    switch (m.type) {
      case MsgType.Hup:
        return this.hup(this.preVote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
      case MsgType.Vote:
      case MsgType.PreVote:
        return this.handleVoteRequest(m);
    }
    switch (this.role) {
      case Role.Leader:
        return this.stepLeader(m);
      case Role.Follower:
        return this.stepFollower(m);
      default:
        return this.stepCandidate(m);
    }
  }

  propose(data: Uint8Array): ProposeResult {
    return this.proposeEntries([{ term: 0, index: 0, type: EntryType.Normal, data }]);
  }

  /** Proposes several entries at once (they share one message and one persist). */
  proposeBatch(datas: Uint8Array[]): ProposeResult {
    const ents: Entry[] = new Array(datas.length);
    for (let i = 0; i < datas.length; i++) ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: datas[i]! };
    return this.proposeEntries(ents);
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    if (this.role === Role.Leader) {
      const why = this.confChangeRefusal(cc);
      if (why) return this.refuse(why);
    }
    return this.proposeEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
  }

  /** Asks for a linearizable read point; the answer comes as a ReadState with the same readCtx. */
  readIndex(readCtx: string): void {
    if (this.role === Role.Leader) return this.leaderReadIndex(readCtx, this.id);
    if (this.lead === NONE) return this.drop('read index: no leader', null);
    const m = this.msg(MsgType.ReadIndex, this.lead);
    m.term = 0;
    m.readCtx = readCtx;
    this.send(m);
  }

  transferLeader(to: NodeId): void {
    if (this.role !== Role.Leader) return this.drop('transfer: not leader', null);
    if (to === this.id) return;
    const pr = this.prs.get(to);
    if (!pr || pr.isLearner) return this.drop('transfer: target is not a voter', null);
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.appendPending.add(to);
  }

  /**
   * The state machine supplies a snapshot of everything applied up to `index`; log entries up to
   * `index - keep` are dropped. The snapshot is handed back in ready() to be persisted.
   */
  compact(index: number, data: Uint8Array, keep = 0): void {
    if (index > this.log.applied || index <= this.snapshot.meta.index) return;
    const term = this.log.term(index);
    if (term < 0) return;
    const snap: Snapshot = { meta: { index, term, conf: this.confAt(index) }, data };
    this.snapshot = snap;
    this.snapshotToPersist = snap;
    this.snapshotRestore = false;
    const cut = index - keep;
    if (cut > this.log.snapIndex) this.log.compact(cut, this.log.term(cut));
  }

  // ---------------------------------------------------------------- ready / advance

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    if (this.heartbeatPending || this.appendPending.size > 0 || this.appendForced.size > 0) this.flushSends();
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.snapshotToPersist !== null ||
      this.log.stableTo < this.log.lastIndex() ||
      this.log.committed > this.log.applied ||
      this.hardStateChanged() ||
      this.prevSoft.lead !== this.lead ||
      this.prevSoft.role !== this.role
    );
  }

  ready(): Ready {
    if (this.readyOutstanding) throw new Error('raft: ready() before advance() of the previous batch');
    this.flushSends();
    this.readyOutstanding = true;
    const hs = this.hardStateChanged() ? { term: this.term, vote: this.vote, commit: this.log.committed } : null;
    const ss = this.prevSoft.lead !== this.lead || this.prevSoft.role !== this.role ? { lead: this.lead, role: this.role } : null;
    const committed =
      this.log.committed > this.log.applied
        ? this.log.entries.slice(this.log.applied - this.log.snapIndex, this.log.committed - this.log.snapIndex)
        : EMPTY_ENTRIES;
    const rd: Ready = {
      hardState: hs,
      entries: this.log.unstableEntries(),
      snapshot: this.snapshotToPersist,
      snapshotRestore: this.snapshotRestore,
      committedEntries: committed,
      messages: this.msgs,
      readStates: this.readStates,
      softState: ss,
    };
    if (hs) this.prevHard = hs;
    if (ss) this.prevSoft = ss;
    this.msgs = [];
    this.readStates = [];
    this.snapshotToPersist = null;
    this.snapshotRestore = false;
    return rd;
  }

  /** The batch from ready() was persisted (and is being sent/applied). */
  advance(rd: Ready): void {
    this.readyOutstanding = false;
    const n = rd.entries.length;
    if (n > 0) {
      const last = rd.entries[n - 1]!;
      // a truncation after ready() may have replaced these entries: only then they are not stable
      if (this.log.matchTerm(last.index, last.term) && last.index > this.log.stableTo) this.log.stableTo = last.index;
    }
    // the leader's own copy counts toward a commit from now on
    if (this.role === Role.Leader) {
      const self = this.prs.get(this.id);
      if (self && self.maybeUpdate(this.durableLast()) && this.maybeCommit()) this.markAllAppend();
    }
    const c = rd.committedEntries.length;
    if (c > 0) {
      const lastApplied = rd.committedEntries[c - 1]!.index;
      for (let i = 0; i < c; i++) {
        const e = rd.committedEntries[i]!;
        if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
      }
      if (lastApplied > this.log.applied) this.log.applied = lastApplied;
    }
  }

  /**
   * Committed entries this node holds durably, past what was applied, that may be applied now,
   * outside ready()/advance(): a commit learned while a ready batch is being written (acknowledged
   * appends of earlier batches) need not wait for that write. Stops before a membership change,
   * which only advance() applies. The entries count as applied from here on.
   */
  takeStableCommitted(): Entry[] {
    const log = this.log;
    const upTo = Math.min(log.committed, log.stableTo);
    if (upTo <= log.applied) return EMPTY_ENTRIES;
    const out: Entry[] = [];
    for (let i = log.applied + 1; i <= upTo; i++) {
      const e = log.entry(i);
      if (!e || e.type === EntryType.ConfChange) break;
      out.push(e);
    }
    if (out.length > 0) log.applied = out[out.length - 1]!.index;
    return out;
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, { match: number; next: number; state: number; inflight: number; probeSent: boolean }>();
    if (this.role === Role.Leader) {
      for (const [id, pr] of this.prs) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflight.count, probeSent: pr.probeSent });
      }
    }
    return {
      id: this.id, term: this.term, vote: this.vote, lead: this.lead, role: this.role,
      commit: this.log.committed, applied: this.log.applied, lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(), conf: cloneConf(this.conf), progress, leadTransferee: this.leadTransferee,
    };
  }

  confState(): ConfState {
    return cloneConf(this.conf);
  }

  /** The latest snapshot (local or received); its data is what followers get. */
  latestSnapshot(): Snapshot {
    return this.snapshot;
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.pendingReads = [];
    this.deferredReads = [];
    this.heartbeatPending = false;
    this.appendPending.clear();
    this.appendForced.clear();
    const last = this.log.lastIndex();
    const durable = this.durableLast();
    for (const [id, pr] of this.prs) {
      pr.match = id === this.id ? durable : 0;
      pr.next = last + 1;
      pr.state = ProgressState.Probe;
      pr.probeSent = false;
      pr.pendingSnapshot = 0;
      pr.recentActive = false;
      pr.readAck = 0;
      pr.sentCommit = 0;
      pr.inflight.reset();
    }
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = Role.Follower;
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    // pre-vote does not touch term or vote: a partitioned node cannot inflate terms
    this.votes.clear();
    this.role = Role.PreCandidate;
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = Role.Leader;
    this.lead = this.id;
    for (const [id, pr] of this.prs) if (id === this.id) pr.recentActive = true;
    // conf changes wait until everything before our term is applied (fixes the single-server change bug)
    this.pendingConfIndex = this.log.lastIndex();
    // commit rule: only entries of the current term count, so commit a no-op to settle older entries
    this.appendLocal([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  private hup(kind: number): void {
    if (this.role === Role.Leader) return;
    if (!this.promotable()) return this.drop('campaign: not a voter', null);
    // a candidate with unapplied conf changes could be counting the wrong voters
    if (this.hasUnappliedConfChange()) return this.drop('campaign: unapplied conf change', null);
    this.campaign(kind);
  }

  private campaign(kind: number): void {
    let voteTerm: number;
    let type: MsgType;
    if (kind === CAMPAIGN_PRE) {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
      type = MsgType.PreVote;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      type = MsgType.Vote;
    }
    if (this.poll(this.id, true) === 1) {
      if (kind === CAMPAIGN_PRE) this.campaign(CAMPAIGN_ELECTION);
      else this.becomeLeader();
      return;
    }
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      const m = this.msg(type, id);
      m.term = voteTerm;
      m.index = this.log.lastIndex();
      m.logTerm = this.log.lastTerm();
      m.transfer = kind === CAMPAIGN_TRANSFER;
      this.send(m);
    }
  }

  /** Records a vote; returns 1 if won, -1 if lost, 0 if undecided. */
  private poll(from: NodeId, granted: boolean): number {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const id of this.conf.voters) {
      const v = this.votes.get(id);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return 1;
    if (no > this.conf.voters.length - q) return -1;
    return 0;
  }

  // ---------------------------------------------------------------- term rules

  /** Returns false if the message was fully handled (or dropped). */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === MsgType.Vote || m.type === MsgType.PreVote) {
      // leader lease: while we hear from a live leader, ignore disruptive campaigns (check-quorum)
      const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTicks;
      if (inLease && !m.transfer) {
        this.drop('vote request while leader lease holds', m);
        return false;
      }
    }
    if (m.type === MsgType.PreVote) return true;
    if (m.type === MsgType.PreVoteResp && !m.reject) return true;
    const fromLeader = m.type === MsgType.App || m.type === MsgType.Heartbeat || m.type === MsgType.Snap;
    this.becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === MsgType.App || m.type === MsgType.Heartbeat)) {
      // a stale leader: tell it our term so it steps down (otherwise, with pre-vote/check-quorum,
      // a node that moved to a higher term could never be reached again)
      this.send(this.msg(MsgType.AppResp, m.from));
      return;
    }
    if (m.type === MsgType.PreVote) {
      const r = this.msg(MsgType.PreVoteResp, m.from);
      r.reject = true;
      this.send(r);
      return;
    }
    this.drop('stale term', m);
  }

  private handleVoteRequest(m: Message): void {
    const pre = m.type === MsgType.PreVote;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (pre && m.term > this.term);
    const r = this.msg(pre ? MsgType.PreVoteResp : MsgType.VoteResp, m.from);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // a granted pre-vote answers in the term the candidate will use
      r.term = m.term;
      if (!pre) {
        this.vote = m.from;
        this.electionElapsed = 0;
      }
    } else {
      r.reject = true;
    }
    this.send(r);
  }

  // ---------------------------------------------------------------- ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.drop('check quorum: no majority heard from, stepping down', null);
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.prs) pr.recentActive = id === this.id;
      }
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE; // transfer timed out
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.heartbeatPending = true;
    }
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MsgType.Beat:
        this.heartbeatPending = true;
        return;
      case MsgType.Prop:
        return void this.leaderPropose(m.entries, m);
      case MsgType.ReadIndex:
        return this.leaderReadIndex(m.readCtx, m.from);
    }
    const pr = this.prs.get(m.from);
    if (!pr) return this.drop('no progress for peer', m);
    switch (m.type) {
      case MsgType.AppResp:
        pr.recentActive = true;
        return this.handleAppResp(m, pr);
      case MsgType.HeartbeatResp:
        pr.recentActive = true;
        return this.handleHeartbeatResp(m, pr);
      case MsgType.SnapResp:
        pr.recentActive = true;
        if (pr.state === ProgressState.Snapshot && m.index === pr.pendingSnapshot && m.offset >= 0) {
          pr.snapOffset = m.offset;
          this.sendSnapChunk(m.from, pr);
        }
        return;
      case MsgType.VoteResp:
      case MsgType.PreVoteResp:
        return; // late answers from our election
      default:
        return this.drop('unexpected message for leader', m);
    }
  }

  private handleAppResp(m: Message, pr: Progress): void {
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.hintTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.appendPending.add(m.from);
      }
      return;
    }
    if (pr.maybeUpdate(m.index)) {
      if (pr.state === ProgressState.Probe) pr.becomeReplicate();
      else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
      else if (pr.state === ProgressState.Replicate) pr.inflight.freeLE(m.index);
      if (this.maybeCommit()) this.markAllAppend();
      else this.appendPending.add(m.from);
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflight.freeLE(m.index);
      this.appendPending.add(m.from);
    } else if (pr.state === ProgressState.Probe) {
      // a duplicate or stale success still proves the peer is reachable: probe again
      pr.probeSent = false;
      this.appendPending.add(m.from);
    }
  }

  private handleHeartbeatResp(m: Message, pr: Progress): void {
    pr.probeSent = false;
    if (pr.state === ProgressState.Snapshot) {
      this.sendSnapChunk(m.from, pr); // resend a chunk that may be lost
    } else if (pr.match < this.log.lastIndex()) {
      // appends may have been lost: make room and send one even if it carries nothing new; a peer
      // missing its previous entry rejects it, which moves it back to probing
      if (pr.state === ProgressState.Replicate && pr.inflight.full()) pr.inflight.freeFirst();
      this.appendForced.add(m.from);
    } else if (pr.sentCommit < this.log.committed) {
      this.appendPending.add(m.from);
    }
    if (m.context > pr.readAck) {
      pr.readAck = m.context;
      this.releaseReads();
    }
  }

  private leaderPropose(ents: Entry[], m: Message | null): ProposeResult {
    if (this.leadTransferee !== NONE) return this.refuse('leadership transfer in progress', m);
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      const why = cc ? this.confChangeRefusal(cc) : 'malformed conf change';
      if (why) {
        // keep the batch's shape; the refused change becomes a no-op
        ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
        this.drop('conf change refused: ' + why, m);
      } else {
        this.pendingConfIndex = this.log.lastIndex() + i + 1;
      }
    }
    const first = this.appendLocal(ents);
    return { ok: true, index: first + ents.length - 1 };
  }

  /** Returns the index of the first appended entry. */
  private appendLocal(ents: Entry[]): number {
    let idx = this.log.lastIndex();
    const first = idx + 1;
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      idx++;
      this.log.append({ term: this.term, index: idx, type: e.type, data: e.data });
    }
    // our own copy counts toward a commit once persisted (advance); a single voter commits then
    this.markAllAppend();
    return first;
  }

  /** The last index this node holds in stable storage. */
  private durableLast(): number {
    return Math.min(this.log.stableTo, this.log.lastIndex());
  }

  private markAllAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.appendPending.add(id);
  }

  private maybeCommit(): boolean {
    const n = this.conf.voters.length;
    if (n === 0) return false;
    const matches: number[] = new Array(n);
    for (let i = 0; i < n; i++) matches[i] = this.prs.get(this.conf.voters[i]!)?.match ?? 0;
    matches.sort((a, b) => b - a);
    const idx = matches[this.quorum() - 1]!;
    if (idx > this.log.committed && this.log.term(idx) === this.term) {
      this.log.committed = idx;
      this.onLeaderCommit();
      return true;
    }
    return false;
  }

  private onLeaderCommit(): void {
    if (this.deferredReads.length > 0 && this.log.term(this.log.committed) === this.term) {
      const reads = this.deferredReads;
      this.deferredReads = [];
      for (const r of reads) this.leaderReadIndex(r.readCtx, r.from);
    }
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderReadIndex(readCtx: string, from: NodeId): void {
    if (!this.committedInTerm()) {
      // until our no-op commits we may not know the true commit index
      this.deferredReads.push({ readCtx, from });
      return;
    }
    const index = this.log.committed;
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      return this.answerRead(index, readCtx, from);
    }
    this.pendingReads.push({ index, seq: ++this.readSeq, readCtx, from });
    this.heartbeatPending = true;
  }

  private answerRead(index: number, readCtx: string, from: NodeId): void {
    if (from === this.id) {
      this.readStates.push({ index, readCtx });
      return;
    }
    const r = this.msg(MsgType.ReadIndexResp, from);
    r.index = index;
    r.readCtx = readCtx;
    this.send(r);
  }

  /** Answers reads whose heartbeat round a quorum of voters has acknowledged. */
  private releaseReads(): void {
    if (this.pendingReads.length === 0) return;
    const n = this.conf.voters.length;
    const acks: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const id = this.conf.voters[i]!;
      acks[i] = id === this.id ? Infinity : (this.prs.get(id)?.readAck ?? 0);
    }
    acks.sort((a, b) => b - a);
    const confirmed = acks[this.quorum() - 1]!;
    let k = 0;
    while (k < this.pendingReads.length && this.pendingReads[k]!.seq <= confirmed) {
      const r = this.pendingReads[k]!;
      this.answerRead(r.index, r.readCtx, r.from);
      k++;
    }
    if (k > 0) this.pendingReads.splice(0, k);
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.conf.voters) {
      if (id === this.id || this.prs.get(id)?.recentActive) active++;
    }
    return active >= this.quorum();
  }

  /** Sends what accumulated during this round of steps: appends per peer once, one heartbeat round. */
  private flushSends(): void {
    if (this.role !== Role.Leader) {
      this.heartbeatPending = false;
      this.appendPending.clear();
      this.appendForced.clear();
      return;
    }
    if (this.heartbeatPending) {
      this.heartbeatPending = false;
      for (const [id, pr] of this.prs) {
        if (id === this.id) continue;
        const m = this.msg(MsgType.Heartbeat, id);
        // never tell a peer to commit past what it is known to hold
        m.commit = Math.min(pr.match, this.log.committed);
        m.context = this.readSeq;
        this.send(m);
      }
    }
    if (this.appendForced.size > 0) {
      for (const id of this.appendForced) {
        const pr = this.prs.get(id);
        if (pr) this.sendAppends(id, pr, true);
      }
      this.appendForced.clear();
    }
    if (this.appendPending.size > 0) {
      for (const id of this.appendPending) {
        const pr = this.prs.get(id);
        if (pr) this.sendAppends(id, pr, false);
      }
      this.appendPending.clear();
    }
  }

  private sendAppends(to: NodeId, pr: Progress, force: boolean): void {
    const last = this.log.lastIndex();
    let sentAny = false;
    if (force && !pr.paused()) {
      if (!this.sendAppend(to, pr)) return;
      sentAny = true;
    }
    while (!pr.paused()) {
      const hasNew = pr.next <= last;
      // with nothing new, one empty append still carries a commit index the peer has not seen
      if (!hasNew && (sentAny || pr.sentCommit >= this.log.committed)) return;
      if (!this.sendAppend(to, pr)) return;
      sentAny = true;
      if (pr.state !== ProgressState.Replicate) return;
    }
  }

  /** Sends one append (or starts a snapshot). Returns false if nothing could be sent. */
  private sendAppend(to: NodeId, pr: Progress): boolean {
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm < 0) {
      this.startSnapshot(to, pr);
      return false;
    }
    const ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxMsgEntries, this.maxMsgBytes);
    const m = this.msg(MsgType.App, to);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = this.log.committed;
    pr.sentCommit = this.log.committed;
    if (ents.length > 0) {
      const lastSent = ents[ents.length - 1]!.index;
      if (pr.state === ProgressState.Replicate) {
        pr.next = lastSent + 1;
        pr.inflight.add(lastSent);
      } else {
        pr.probeSent = true;
      }
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    this.send(m);
    return true;
  }

  private startSnapshot(to: NodeId, pr: Progress): void {
    if (this.snapshot.meta.index === 0) return this.drop('peer needs a snapshot but none exists', null);
    pr.becomeSnapshot(this.snapshot.meta.index);
    this.sendSnapChunk(to, pr);
  }

  private sendSnapChunk(to: NodeId, pr: Progress): void {
    const snap = this.snapshot;
    if (snap.meta.index !== pr.pendingSnapshot) {
      // a newer snapshot replaced the one being streamed: start over with it
      pr.becomeSnapshot(snap.meta.index);
    }
    const total = snap.data.length;
    const off = Math.min(pr.snapOffset, total);
    const m = this.msg(MsgType.Snap, to);
    m.snap = { meta: snap.meta, offset: off, total, data: snap.data.subarray(off, off + this.chunkBytes) };
    this.send(m);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(this.msg(MsgType.TimeoutNow, to));
  }

  // ---------------------------------------------------------------- follower / candidate

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MsgType.Prop:
        if (this.lead === NONE) return this.drop('proposal: no leader', m);
        if (m.from !== this.id) return this.drop('proposal forwarded to a non-leader', m);
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MsgType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleAppend(m);
      case MsgType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleHeartbeat(m);
      case MsgType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleSnapChunk(m);
      case MsgType.ReadIndex:
        if (this.lead === NONE) return this.drop('read index: no leader', m);
        // forwarded on behalf of the requester: the leader answers it directly
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MsgType.ReadIndexResp:
        this.readStates.push({ index: m.index, readCtx: m.readCtx });
        return;
      case MsgType.TimeoutNow:
        if (!this.promotable()) return this.drop('timeout-now: not a voter', m);
        return this.campaign(CAMPAIGN_TRANSFER);
      case MsgType.Beat:
      case MsgType.VoteResp:
      case MsgType.PreVoteResp:
      case MsgType.AppResp:
      case MsgType.HeartbeatResp:
      case MsgType.SnapResp:
        return; // answers to a role we no longer have
      default:
        return this.drop('unexpected message for follower', m);
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MsgType.Prop:
        return this.drop('proposal: no leader', m);
      case MsgType.App:
      case MsgType.Heartbeat:
      case MsgType.Snap:
        this.becomeFollower(m.term, m.from);
        return this.stepFollower(m);
      case MsgType.VoteResp:
      case MsgType.PreVoteResp: {
        const mine = this.role === Role.PreCandidate ? MsgType.PreVoteResp : MsgType.VoteResp;
        if (m.type !== mine) return;
        const r = this.poll(m.from, !m.reject);
        if (r === 1) {
          if (this.role === Role.PreCandidate) this.campaign(CAMPAIGN_ELECTION);
          else this.becomeLeader();
        } else if (r === -1) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case MsgType.TimeoutNow:
        return this.drop('timeout-now while campaigning', m);
      default:
        return; // Beat, responses to an old leadership, ReadIndex without a leader
    }
  }

  private handleAppend(m: Message): void {
    const r = this.msg(MsgType.AppResp, m.from);
    if (m.index < this.log.committed) {
      r.index = this.log.committed;
      this.send(r);
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      if (!this.log.appendFrom(m.entries)) return this.drop('append conflicts with committed entry', m);
      const lastNew = m.index + m.entries.length;
      const c = Math.min(m.commit, lastNew);
      if (c > this.log.committed) this.log.committed = c;
      r.index = lastNew;
      this.send(r);
      return;
    }
    // fast backtracking: point the leader at the last entry that could match
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    r.reject = true;
    r.index = m.index;
    r.rejectHint = hintIndex;
    r.hintTerm = Math.max(this.log.term(hintIndex), 0);
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    if (m.commit > this.log.committed && m.commit <= this.log.lastIndex()) this.log.committed = m.commit;
    const r = this.msg(MsgType.HeartbeatResp, m.from);
    r.context = m.context;
    this.send(r);
  }

  private handleSnapChunk(m: Message): void {
    const c = m.snap!;
    const meta = c.meta;
    if (meta.index <= this.log.committed) {
      // we already have it: tell the leader where we are
      const r = this.msg(MsgType.AppResp, m.from);
      r.index = this.log.committed;
      this.send(r);
      this.incoming = null;
      return;
    }
    let inc = this.incoming;
    if (c.offset === 0 && (!inc || inc.index !== meta.index || inc.term !== meta.term || inc.received > 0)) {
      inc = this.incoming = { index: meta.index, term: meta.term, total: c.total, received: 0, parts: [] };
    }
    if (inc && inc.index === meta.index && inc.term === meta.term && inc.total === c.total && c.offset === inc.received) {
      if (c.data.length > 0) {
        inc.parts.push(c.data.slice());
        inc.received += c.data.length;
      }
      if (inc.received >= inc.total) {
        this.incoming = null;
        const data = concat(inc.parts, inc.total);
        this.restore({ meta, data });
        const r = this.msg(MsgType.AppResp, m.from);
        // only the snapshot point is known to match the leader (entries after it may not)
        r.index = meta.index;
        this.send(r);
        return;
      }
    }
    const r = this.msg(MsgType.SnapResp, m.from);
    r.index = meta.index;
    r.offset = inc && inc.index === meta.index && inc.term === meta.term ? inc.received : 0;
    this.send(r);
  }

  private restore(s: Snapshot): void {
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // our log already holds it: just move the commit index
      if (s.meta.index > this.log.committed) this.log.committed = s.meta.index;
      return;
    }
    this.log.restore(s);
    this.snapshot = s;
    this.snapshotToPersist = s;
    this.snapshotRestore = true;
    this.conf = cloneConf(s.meta.conf);
    this.confHistory = [{ index: s.meta.index, conf: cloneConf(s.meta.conf) }];
    this.rebuildProgress();
  }

  // ---------------------------------------------------------------- membership

  private confChangeRefusal(cc: ConfChange): string | null {
    if (this.pendingConfIndex > this.log.applied) return 'another conf change is not yet applied';
    const isVoter = this.conf.voters.includes(cc.node);
    const isLearner = this.conf.learners.includes(cc.node);
    if (cc.op === ConfChangeOp.Remove && isVoter && this.conf.voters.length === 1) return 'cannot remove the last voter';
    if (cc.op === ConfChangeOp.Remove && !isVoter && !isLearner) return 'node is not a member';
    if (cc.op === ConfChangeOp.AddLearner && (isVoter || isLearner)) return 'node is already a member';
    if (cc.op === ConfChangeOp.AddVoter && isVoter) return 'node is already a voter';
    return null;
  }

  private applyConfEntry(e: Entry): void {
    const cc = decodeConfChange(e.data);
    if (!cc) return this.drop('committed conf change is malformed; ignored', null);
    this.conf = applyConfChange(this.conf, cc);
    this.confHistory.push({ index: e.index, conf: cloneConf(this.conf) });
    this.rebuildProgress();
    if (this.role !== Role.Leader) return;
    if (!this.conf.voters.includes(this.id)) {
      // we removed ourselves: let the remaining voters elect a leader
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.conf.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
    if (this.maybeCommit()) this.markAllAppend();
    this.releaseReads();
  }

  private rebuildProgress(): void {
    const want = new Set<NodeId>([...this.conf.voters, ...this.conf.learners]);
    for (const id of [...this.prs.keys()]) if (!want.has(id)) this.prs.delete(id);
    const last = this.log.lastIndex();
    for (const id of want) {
      const isLearner = this.conf.learners.includes(id);
      const pr = this.prs.get(id);
      if (pr) {
        pr.isLearner = isLearner;
        continue;
      }
      const np = new Progress(last + 1, this.maxInflight, isLearner);
      if (id === this.id) np.match = this.durableLast();
      this.prs.set(id, np);
      if (this.role === Role.Leader && id !== this.id) this.appendPending.add(id);
    }
  }

  private confAt(index: number): ConfState {
    let c = this.confHistory[0]!.conf;
    for (const h of this.confHistory) if (h.index <= index) c = h.conf;
    // forget history the snapshot covers, keeping the membership at the snapshot point
    this.confHistory = [{ index, conf: c }, ...this.confHistory.filter((h) => h.index > index)];
    return cloneConf(c);
  }

  private hasUnappliedConfChange(): boolean {
    const log = this.log;
    for (let i = log.applied + 1; i <= log.committed; i++) {
      if (log.entry(i)?.type === EntryType.ConfChange) return true;
    }
    return false;
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  private quorum(): number {
    return (this.conf.voters.length >> 1) + 1;
  }

  // ---------------------------------------------------------------- helpers

  private knownSender(m: Message): boolean {
    if (m.from === this.id) return true;
    if (this.prs.has(m.from)) return true;
    // A node that is not yet (or no longer) in our membership may still be the legitimate leader
    // of the current term (we may lag behind the conf change that added it): the term rules decide.
    return m.type === MsgType.App || m.type === MsgType.Heartbeat || m.type === MsgType.Snap;
  }

  private proposeEntries(ents: Entry[]): ProposeResult {
    if (this.role === Role.Leader) return this.leaderPropose(ents, null);
    if (this.lead === NONE) return this.refuse('no leader');
    const m = this.msg(MsgType.Prop, this.lead);
    m.term = 0;
    m.entries = ents;
    this.send(m);
    return { ok: true, index: 0 };
  }

  private refuse(reason: string, m: Message | null = null): ProposeResult {
    this.drop(reason, m);
    return { ok: false, reason };
  }

  private hardStateChanged(): boolean {
    const p = this.prevHard;
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.log.committed;
  }

  private msg(type: MsgType, to: NodeId): Message {
    return newMessage(type, this.id, to, this.term);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private drop(reason: string, m: Message | null): void {
    this.onDrop(reason, m);
  }
}


function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.length === total) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
