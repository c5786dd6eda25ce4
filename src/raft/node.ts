import { randomInt } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { bootstrapEntries, decodeConfChange } from './core/confchange.js';
import { forceNewCluster } from './core/force-new-cluster.js';
import { Raft, appliableBeforePersist, sendableBeforePersist, type RaftStatus } from './core/raft.js';
import { ConfChangeOp, EntryType, Role, type Entry, type Message, type NodeId, type Ready } from './core/types.js';
import { LevelRaftStorage } from './storage/leveldb.js';
import { GrpcTransport } from './transport/grpc.js';

/** What the node replicates: the caller's state machine. */
export interface StateMachine {
  /** Applies one committed command (in log order, exactly once per node lifetime after restore). */
  apply(index: number, data: Uint8Array): void;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface RaftNodeOptions {
  id: NodeId;
  dataDir: string;
  /** this node's raft address, told to peers when it is added */
  address: string;
  /** initial members (id -> address) for a new cluster; omit to join an existing one as a learner */
  initialMembers?: Map<NodeId, string>;
  stateMachine: StateMachine;
  /** the caller's gRPC server: the Raft service is added to it */
  server: grpc.Server;
  channelCredentials?: grpc.ChannelCredentials;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** take a state-machine snapshot every this many applied entries */
  snapshotEvery?: number;
  /** entries kept after a snapshot so slightly slow followers avoid a snapshot transfer */
  snapshotKeep?: number;
  requestTimeoutMs?: number;
  /** restart as the only voter of the cluster, from this node's own log (quorum lost for good) */
  forceNewCluster?: boolean;
  /**
   * Told once the leader refused this node as a removed member (e.g. left out by --force-new-cluster
   * elsewhere): the node then stops taking part, so that it cannot lead the old membership's rest.
   */
  onRemoved?: (why: string) => void;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

interface Pending {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  deadline: number;
}

interface ReadWait {
  index: number;
  waiters: Pending[];
}

const HEADER = 8; // origin node id u32 | proposal id u32 (the low 32 bits of this node's id counter)
/**
 * Proposal ids are reserved in blocks, durably, before use: a restarted node replays (and may still
 * receive) entries its earlier life proposed, and must not take them for its own new proposals.
 */
const ID_BLOCK = 1 << 16;
/** where a node whose storage predates reserved ids starts: its earlier lives counted from 1 */
const LEGACY_ID_BASE = 2 ** 31;

/**
 * The node loop: ties the pure core to LevelDB storage, the gRPC transport and the state machine.
 * Each turn persists one ready batch with one fsync, then sends its messages and applies its
 * committed entries; whatever arrives during the fsync is stepped into the core and goes out in the
 * next batch, which is what makes many concurrent proposals share a write.
 */
export class RaftNode {
  readonly id: NodeId;
  private raft!: Raft;
  private storage!: LevelRaftStorage;
  private readonly transport: GrpcTransport;
  private readonly sm: StateMachine;
  private readonly opts: RaftNodeOptions;
  private readonly addresses = new Map<NodeId, string>();
  /** Members whose removal this node has applied (and not re-added): a leader refuses their messages. */
  private readonly removed = new Set<NodeId>();
  /** Set once a leader told this node it was removed: it no longer ticks, campaigns or proposes. */
  private removedFromCluster: string | null = null;
  /** last proposal id handed out; ids up to seqLimit are durably reserved for this life */
  private proposeSeq = 0;
  private seqLimit = 0;
  private readSeq = 0;
  private pending = new Map<number, Pending>();
  /** pairs of (pending, index) applied in the current turn */
  private resolved: (Pending | number)[] = [];
  private proposeQueue: Uint8Array[] = [];
  private proposeQueueSeqs: number[] = [];
  private readQueue: Pending[] = [];
  private readsInFlight = new Map<string, Pending[]>();
  private readsWaitingApply: ReadWait[] = [];
  private leaderWaiters: (() => void)[] = [];
  private applied = 0;
  /** the leader as last reported by the core */
  private knownLead: NodeId = 0;
  private lastSnapshotIndex = 0;
  private running = false;
  private scheduled = false;
  private stopped = false;
  private started = false;
  private ticker: NodeJS.Timeout | null = null;
  private fatal: Error | null = null;

  constructor(opts: RaftNodeOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.sm = opts.stateMachine;
    this.transport = new GrpcTransport({
      id: opts.id,
      address: opts.address,
      onMessage: (m) => this.receive(m),
      onDrop: (reason, to) => this.log('debug', `transport drop to ${to}: ${reason}`),
      // Only the leader refuses: it has applied every membership change a removed node could miss,
      // where a lagging follower might not yet know that an id was added again.
      isRemoved: (from) => this.started && !this.stopped && this.removed.has(from) && this.isLeader(),
      onRemoved: (by, why) => this.haltRemoved(by, why),
      ...(opts.channelCredentials ? { channelCredentials: opts.channelCredentials } : {}),
    });
    this.transport.register(opts.server);
  }

  async start(): Promise<void> {
    const o = this.opts;
    this.storage = await LevelRaftStorage.open(o.dataDir);
    let st = await this.storage.load();
    const fresh = !st;
    if (!st) {
      const members = o.initialMembers;
      const entries = members
        ? bootstrapEntries([...members.keys()].sort((a, b) => a - b), (id) => this.ccContext(0, members.get(id)!))
        : [];
      const hard = { term: entries.length > 0 ? 1 : 0, vote: 0, commit: entries.length };
      await this.storage.bootstrap(hard, entries);
      st = { hardState: hard, snapshot: { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) }, entries };
    }
    if (o.forceNewCluster) {
      if (fresh) throw new Error('--force-new-cluster needs this manager\'s raft log, and there is none');
      const forced = forceNewCluster(o.id, st.hardState, st.snapshot, st.entries, decodeConfChange, (node) => this.ccContext(0, node === o.id ? o.address : ''));
      await this.storage.save({
        hardState: forced.hardState, entries: forced.entries, snapshot: null, snapshotRestore: false,
        committedEntries: [], messages: [], readStates: [], softState: null,
      });
      st = { ...st, hardState: forced.hardState, entries: [...st.entries, ...forced.entries] };
      this.log('warn', `forced a new cluster: ${o.id} is now the only voter (removed ${forced.removed.join(', ') || 'nobody'}) at term ${forced.hardState.term}`);
    }
    const reserved = await this.storage.reservedProposalIds();
    // a new member starts anywhere: its id may have belonged to a removed node whose proposals are in the log
    this.proposeSeq = reserved ?? (fresh ? randomInt(2 ** 32) : LEGACY_ID_BASE);
    this.seqLimit = this.proposeSeq + ID_BLOCK;
    await this.storage.reserveProposalIds(this.seqLimit); // before any id of this life is used
    if (st.snapshot.data.length > 0) this.restoreSnapshot(st.snapshot.data);
    this.applied = st.snapshot.meta.index;
    this.lastSnapshotIndex = st.snapshot.meta.index;
    // addresses of members named in the log are learned as their conf changes are (re)applied
    this.raft = new Raft(
      {
        id: o.id, electionTicks: o.electionTicks ?? 10, heartbeatTicks: o.heartbeatTicks ?? 1,
        random: Math.random, preVote: true, checkQuorum: true,
        onDrop: (reason) => this.log('debug', `raft drop: ${reason}`),
      },
      st,
    );
    for (const e of st.entries) this.learnAddress(e);
    this.started = true;
    this.ticker = setInterval(() => this.tick(), o.tickMs ?? 100);
    this.kick();
  }

  // ---------------------------------------------------------------- API

  /** Resolves with the entry's index once it is committed and applied on this node. */
  propose(data: Uint8Array): Promise<number> {
    if (this.removedFromCluster) return Promise.reject(new Error(this.removedFromCluster));
    if (!this.started || this.stopped) return Promise.reject(new Error('raft node is not running'));
    const seq = this.nextSeq();
    const buf = new Uint8Array(HEADER + data.length);
    writeHeader(buf, this.id, seq);
    buf.set(data, HEADER);
    const p = this.track(seq);
    this.proposeQueue.push(buf);
    this.proposeQueueSeqs.push(seq);
    this.kick();
    return p;
  }

  /** Resolves when this node's state machine reflects every write committed before the call. */
  read(): Promise<void> {
    if (this.removedFromCluster) return Promise.reject(new Error(this.removedFromCluster));
    if (!this.started || this.stopped) return Promise.reject(new Error('raft node is not running'));
    return new Promise<void>((resolve, reject) => {
      this.readQueue.push({ resolve: () => resolve(), reject, deadline: Date.now() + this.timeoutMs() });
      this.kick();
    });
  }

  status(): RaftStatus & { appliedByNode: number } {
    const st = this.raft.status();
    // A removed member may have been elected by another before it learned: it leads nothing.
    if (this.removedFromCluster) return { ...st, lead: 0, role: Role.Follower, appliedByNode: this.applied };
    return { ...st, appliedByNode: this.applied };
  }

  isLeader(): boolean {
    return this.raft.role === Role.Leader && !this.removedFromCluster;
  }

  addLearner(id: NodeId, address: string): Promise<number> {
    return this.confChange(ConfChangeOp.AddLearner, id, address);
  }

  promote(id: NodeId): Promise<number> {
    return this.confChange(ConfChangeOp.AddVoter, id, this.addresses.get(id) ?? '');
  }

  remove(id: NodeId): Promise<number> {
    return this.confChange(ConfChangeOp.Remove, id, '');
  }

  /** Hands leadership to `to` (default: the most caught-up other voter); resolves when it moved. */
  async transferLeadership(to?: NodeId): Promise<NodeId> {
    const st = this.raft.status();
    if (st.role !== Role.Leader) throw new Error('not the leader');
    let target = to;
    if (target === undefined) {
      let best = -1;
      for (const [id, pr] of st.progress) {
        if (id !== this.id && st.conf.voters.includes(id) && pr.match > best) {
          best = pr.match;
          target = id;
        }
      }
    }
    if (target === undefined) throw new Error('no other voter to transfer to');
    this.raft.transferLeader(target);
    this.kick();
    const deadline = Date.now() + this.timeoutMs();
    while (Date.now() < deadline) {
      await new Promise<void>((r) => this.leaderWaiters.push(r));
      const lead = this.raft.lead;
      if (lead !== this.id && lead !== 0) return lead;
    }
    throw new Error('leadership transfer timed out');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.transport.close();
    const err = new Error('raft node stopped');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const p of this.readQueue) p.reject(err);
    this.readQueue = [];
    while (this.running) await new Promise((r) => setTimeout(r, 5));
    await this.storage?.close();
  }

  // ---------------------------------------------------------------- loop

  /**
   * The leader of the cluster refused this node as removed: whatever this node's own log says, it is
   * no longer a member. It stops ticking (no campaigns, so that two removed members cannot elect each
   * other and serve the old membership) and fails what it was asked; stop() still cleans up.
   */
  private haltRemoved(by: NodeId, why: string): void {
    if (this.removedFromCluster || this.stopped) return;
    this.removedFromCluster = `this manager was removed from the swarm's raft cluster (member ${by} leads without it${why ? `: ${why}` : ''}); it takes no part until it leaves and joins again`;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    const err = new Error(this.removedFromCluster);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const p of this.readQueue) p.reject(err);
    this.readQueue = [];
    this.log('error', this.removedFromCluster);
    this.opts.onRemoved?.(this.removedFromCluster);
  }

  /** Why this node no longer takes part, once a leader refused it as removed. */
  removedReason(): string | null {
    return this.removedFromCluster;
  }

  private receive(m: Message): void {
    if (!this.started || this.stopped || this.removedFromCluster) return;
    this.raft.step(m);
    // a commit learned while this turn's write is in flight (acknowledgements of earlier batches)
    // is applied and answered now rather than after that write
    if (this.running) for (const e of this.raft.takeStableCommitted()) this.applyEntry(e);
    this.kick();
  }

  private tick(): void {
    if (this.stopped) return;
    this.raft.tick();
    this.expire();
    this.kick();
  }

  private kick(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped || this.fatal) return;
    this.running = true;
    try {
      for (;;) {
        if (this.proposeSeq + ID_BLOCK / 2 > this.seqLimit) {
          const upTo = this.proposeSeq + ID_BLOCK;
          await this.storage.reserveProposalIds(upTo);
          if (this.stopped) return;
          this.seqLimit = upTo;
        }
        this.flushRequests();
        if (!this.raft.hasReady()) break;
        const rd = this.raft.ready();
        // a leader's appends go out while its own write is in flight; everything else waits for it
        const early = rd.messages.filter(sendableBeforePersist);
        if (early.length > 0) this.transport.send(early);
        // entries committed by earlier batches are already durable: apply them during this write
        const durable = appliableBeforePersist(rd);
        for (let i = 0; i < durable; i++) this.applyEntry(rd.committedEntries[i]!);
        await this.storage.save(rd); // durable before the rest of rd is sent or applied
        if (this.stopped) return;
        this.transport.send(early.length === 0 ? rd.messages : rd.messages.filter((m) => !sendableBeforePersist(m)));
        this.applyReady(rd, durable);
        this.raft.advance(rd);
        this.flushResolved();
        this.serveReads();
        this.maybeSnapshot();
        if (rd.softState) this.onLeaderChange(rd.softState.lead);
      }
    } catch (e) {
      // storage failures leave us unable to promise durability: stop rather than diverge
      this.fatal = e as Error;
      this.log('error', `raft node ${this.id} stopping on fatal error: ${(e as Error).message}`);
      void this.stop();
    } finally {
      this.running = false;
    }
  }

  /**
   * Proposals handed to a leader that is gone may be lost with it: their callers learn it now (the
   * outcome is unknown, as on a timeout) instead of waiting out their deadline, so a client retries
   * against the new leader as soon as there is one. Proposals still queued here for want of a
   * leader are kept: they go to the next one.
   */
  private onLeaderChange(lead: NodeId): void {
    const was = this.knownLead;
    this.knownLead = lead;
    if (was !== 0 && was !== lead && this.pending.size > 0) {
      const queued = new Set(this.proposeQueueSeqs.map((s) => s >>> 0));
      const err = new Error(`leader changed (${was} -> ${lead || 'none'}): proposal outcome unknown, it may still commit`);
      for (const [seq, p] of this.pending) {
        if (queued.has(seq)) continue;
        this.pending.delete(seq);
        p.reject(err);
      }
    }
    if (was !== 0 && was !== lead) {
      // reads are idempotent: those the old leader never answered are asked of the new one
      for (const ws of this.readsInFlight.values()) this.readQueue.push(...ws);
      this.readsInFlight.clear();
    }
    for (const w of this.leaderWaiters.splice(0)) w();
  }

  private flushRequests(): void {
    // with no known leader (an election is running) requests wait here until one is known or they time out
    if (this.raft.lead === 0) return;
    if (this.proposeQueue.length > 0) {
      // only ids already reserved durably may leave this node; the rest wait for the next reservation
      let n = this.proposeQueueSeqs.length;
      while (n > 0 && this.proposeQueueSeqs[n - 1]! > this.seqLimit) n--;
      if (n > 0) {
        const datas = this.proposeQueue.slice(0, n);
        const seqs = this.proposeQueueSeqs.slice(0, n);
        this.proposeQueue = this.proposeQueue.slice(n);
        this.proposeQueueSeqs = this.proposeQueueSeqs.slice(n);
        const r = this.raft.proposeBatch(datas);
        if (!r.ok) this.failSeqs(seqs, r.reason);
      }
    }
    if (this.readQueue.length > 0) {
      const ctx = `${this.id}:${++this.readSeq}`;
      this.readsInFlight.set(ctx, this.readQueue);
      this.readQueue = [];
      this.raft.readIndex(ctx);
    }
  }

  private applyReady(rd: Ready, from: number): void {
    if (rd.snapshot && rd.snapshotRestore) {
      this.restoreSnapshot(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.lastSnapshotIndex = rd.snapshot.meta.index;
    }
    const ents = rd.committedEntries;
    for (let i = from; i < ents.length; i++) this.applyEntry(ents[i]!);
    for (const rs of rd.readStates) {
      const ws = this.readsInFlight.get(rs.readCtx);
      if (!ws) continue;
      this.readsInFlight.delete(rs.readCtx);
      this.readsWaitingApply.push({ index: rs.index, waiters: ws });
    }
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return;
    this.applied = e.index;
    if (e.type === EntryType.ConfChange) {
      this.learnAddress(e);
      const cc = decodeConfChange(e.data);
      if (cc && cc.context && cc.context.length >= HEADER) this.resolveHeader(cc.context, e.index);
      return;
    }
    if (e.data.length < HEADER) return; // leader no-op
    this.sm.apply(e.index, e.data.subarray(HEADER));
    // a normal entry changes nothing in the core: its proposer may hear now, even while this
    // turn's write is still in flight (the entry itself is committed, so durable on a majority)
    const p = this.takePending(e.data);
    if (p) p.resolve(e.index);
  }

  private resolveHeader(h: Uint8Array, index: number): void {
    const p = this.takePending(h);
    if (p) this.resolved.push(p, index);
  }

  /** The pending request of this node that proposed an entry with header `h`, removed from the table. */
  private takePending(h: Uint8Array): Pending | undefined {
    if ((h[0]! | (h[1]! << 8) | (h[2]! << 16)) + h[3]! * 0x1000000 !== this.id) return undefined;
    const id = (h[4]! | (h[5]! << 8) | (h[6]! << 16)) + h[7]! * 0x1000000;
    const p = this.pending.get(id);
    if (p) this.pending.delete(id);
    return p;
  }

  /** Proposals answer after the core has advanced, so callers see the effects (e.g. membership) in status(). */
  private flushResolved(): void {
    const r = this.resolved;
    if (r.length === 0) return;
    this.resolved = [];
    for (let i = 0; i < r.length; i += 2) (r[i] as Pending).resolve(r[i + 1] as number);
  }

  private serveReads(): void {
    if (this.readsWaitingApply.length === 0) return;
    const rest: ReadWait[] = [];
    for (const r of this.readsWaitingApply) {
      if (r.index <= this.applied) for (const w of r.waiters) w.resolve(r.index);
      else rest.push(r);
    }
    this.readsWaitingApply = rest;
  }

  private maybeSnapshot(): void {
    const every = this.opts.snapshotEvery ?? 10_000;
    if (this.applied - this.lastSnapshotIndex < every) return;
    const data = this.wrapSnapshot(this.sm.snapshot());
    this.raft.compact(this.applied, data, this.opts.snapshotKeep ?? 1000);
    this.lastSnapshotIndex = this.applied;
  }

  // ---------------------------------------------------------------- membership and addresses

  private confChange(op: ConfChangeOp, node: NodeId, address: string): Promise<number> {
    if (!this.started || this.stopped) return Promise.reject(new Error('raft node is not running'));
    const seq = this.nextSeq();
    const p = this.track(seq);
    if (seq > this.seqLimit) {
      this.failSeqs([seq], 'proposal ids are being reserved, retry');
      this.kick();
      return p;
    }
    const r = this.raft.proposeConfChange({ op, node, context: this.ccContext(seq, address) });
    if (!r.ok) this.failSeqs([seq], r.reason);
    this.kick();
    return p;
  }

  private ccContext(seq: number, address: string): Uint8Array {
    const a = Buffer.from(address, 'utf8');
    const out = new Uint8Array(HEADER + a.length);
    writeHeader(out, seq === 0 ? 0 : this.id, seq);
    out.set(a, HEADER);
    return out;
  }

  private learnAddress(e: Entry): void {
    if (e.type !== EntryType.ConfChange) return;
    const cc = decodeConfChange(e.data);
    if (!cc) return;
    if (cc.op === ConfChangeOp.Remove) {
      // a removed member keeps its address until it is applied everywhere; it simply gets no traffic
      this.addresses.delete(cc.node);
      if (cc.node !== this.id) this.removed.add(cc.node);
      if (cc.node !== this.id) this.transport.removePeer(cc.node);
      return;
    }
    const ctx = cc.context;
    if (!ctx || ctx.length <= HEADER) return;
    const addr = Buffer.from(ctx.subarray(HEADER)).toString('utf8');
    this.removed.delete(cc.node);
    this.addresses.set(cc.node, addr);
    this.transport.setPeer(cc.node, addr);
  }

  /**
   * Snapshot layout: u32 length of the address book (JSON) | address book | state machine data. The
   * book is { addresses, removed } (older snapshots: the addresses alone, as an array), so that the
   * removed members are still refused once the entries that removed them are compacted away.
   */
  private wrapSnapshot(smData: Uint8Array): Uint8Array {
    const book = Buffer.from(JSON.stringify({ addresses: [...this.addresses], removed: [...this.removed] }), 'utf8');
    const out = new Uint8Array(4 + book.length + smData.length);
    new DataView(out.buffer).setUint32(0, book.length, true);
    out.set(book, 4);
    out.set(smData, 4 + book.length);
    return out;
  }

  private restoreSnapshot(data: Uint8Array): void {
    const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
    const parsed = JSON.parse(Buffer.from(data.subarray(4, 4 + n)).toString('utf8')) as [NodeId, string][] | { addresses: [NodeId, string][]; removed: NodeId[] };
    const book = Array.isArray(parsed) ? parsed : parsed.addresses;
    this.removed.clear();
    if (!Array.isArray(parsed)) for (const id of parsed.removed) if (id !== this.id) this.removed.add(id);
    this.addresses.clear();
    for (const [id, addr] of book) {
      this.addresses.set(id, addr);
      this.transport.setPeer(id, addr);
    }
    this.sm.restore(data.subarray(4 + n));
  }

  // ---------------------------------------------------------------- bookkeeping

  /** The next proposal id: a counter over all lives of this node; entries carry its low 32 bits (never 0). */
  private nextSeq(): number {
    do this.proposeSeq++;
    while (this.proposeSeq >>> 0 === 0);
    return this.proposeSeq;
  }

  private track(seq: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.pending.set(seq >>> 0, { resolve, reject, deadline: Date.now() + this.timeoutMs() });
    });
  }

  private failSeqs(seqs: number[], reason: string): void {
    const err = new Error(`proposal refused: ${reason}`);
    for (const s of seqs) {
      const p = this.pending.get(s >>> 0);
      if (!p) continue;
      this.pending.delete(s >>> 0);
      p.reject(err);
    }
  }

  /** Requests are tracked in insertion order, so expiry only looks at the oldest. */
  private expire(): void {
    const now = Date.now();
    for (const r of this.readQueue.splice(0)) {
      if (r.deadline <= now) r.reject(new Error('read timed out: no leader'));
      else this.readQueue.push(r);
    }
    for (const [seq, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(seq);
      p.reject(new Error('proposal timed out (not committed; it may still commit later)'));
    }
    // proposals still queued for want of a leader and now expired are never proposed
    if (this.proposeQueueSeqs.length > 0 && !this.pending.has(this.proposeQueueSeqs[0]! >>> 0)) {
      const datas: Uint8Array[] = [];
      const seqs: number[] = [];
      for (let i = 0; i < this.proposeQueueSeqs.length; i++) {
        if (!this.pending.has(this.proposeQueueSeqs[i]! >>> 0)) continue;
        datas.push(this.proposeQueue[i]!);
        seqs.push(this.proposeQueueSeqs[i]!);
      }
      this.proposeQueue = datas;
      this.proposeQueueSeqs = seqs;
    }
    for (const [ctx, ws] of this.readsInFlight) {
      if (ws[0] && ws[0].deadline > now) break;
      this.readsInFlight.delete(ctx);
      for (const w of ws) w.reject(new Error('read timed out'));
    }
    for (const w of this.leaderWaiters.splice(0)) w();
  }

  private timeoutMs(): number {
    return this.opts.requestTimeoutMs ?? 5000;
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
    this.opts.log?.(level, msg);
  }
}

function writeHeader(buf: Uint8Array, origin: number, seq: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, HEADER);
  dv.setUint32(0, origin, true);
  dv.setUint32(4, seq >>> 0, true);
}
