/**
 * Wire-independent types of the pure Raft core. Node ids are positive integers; 0 means "none".
 */
export type NodeId = number;
export const NONE: NodeId = 0;

export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export const MsgType = {
  /** local: start an election now */
  Hup: 0,
  /** local: leader sends heartbeats now */
  Beat: 1,
  /** proposal, local or forwarded from a follower to the leader */
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  PreVote: 7,
  PreVoteResp: 8,
  Heartbeat: 9,
  HeartbeatResp: 10,
  /** one chunk of an InstallSnapshot */
  Snap: 11,
  /** acknowledges snapshot chunks received so far (offset) */
  SnapResp: 12,
  ReadIndex: 13,
  ReadIndexResp: 14,
  TimeoutNow: 15,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];
export const MSG_TYPE_MAX = 15;

/** A chunk of a snapshot in flight: `data` is bytes [offset, offset+data.length) of `total`. */
export interface SnapChunk {
  meta: SnapshotMeta;
  offset: number;
  total: number;
  data: Uint8Array;
}

/**
 * One message between peers. Field meaning depends on `type` (as in the Raft paper):
 * App: index/logTerm = previous entry; AppResp: index = last matching index (or the rejected
 * prevIndex, with rejectHint/hintTerm for fast backtracking); Vote: index/logTerm = last entry;
 * Heartbeat(Resp): context = read sequence being confirmed; SnapResp: index = snapshot index,
 * offset = bytes received.
 */
export interface Message {
  type: MsgType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  commit: number;
  entries: Entry[];
  reject: boolean;
  rejectHint: number;
  hintTerm: number;
  context: number;
  /** campaign caused by leadership transfer: voters ignore their leader lease */
  transfer: boolean;
  /** ReadIndex request id (opaque to the core) */
  readCtx: string;
  snap: SnapChunk | null;
  offset: number;
}

export function newMessage(type: MsgType, from: NodeId, to: NodeId, term: number): Message {
  return {
    type, from, to, term,
    logTerm: 0, index: 0, commit: 0, entries: EMPTY_ENTRIES,
    reject: false, rejectHint: 0, hintTerm: 0, context: 0,
    transfer: false, readCtx: '', snap: null, offset: 0,
  };
}

export const EMPTY_ENTRIES: Entry[] = [];
Object.freeze(EMPTY_ENTRIES);

export const Role = { Follower: 'follower', PreCandidate: 'pre-candidate', Candidate: 'candidate', Leader: 'leader' } as const;
export type Role = (typeof Role)[keyof typeof Role];

export interface ReadState {
  /** commit index at the time the read was confirmed: serve the read once applied >= index */
  index: number;
  readCtx: string;
}

export interface SoftState {
  lead: NodeId;
  role: Role;
}

/** What the caller must do, in order: persist (snapshot, entries, hard state), then send and apply. */
export interface Ready {
  /** set when changed since the last persisted hard state */
  hardState: HardState | null;
  /** to append to the stable log; entries[0].index may overwrite (truncate) the stored suffix */
  entries: Entry[];
  /** snapshot to persist; `restore` means the state machine must load it (it came from the leader) */
  snapshot: Snapshot | null;
  snapshotRestore: boolean;
  /** committed entries to apply to the state machine, in order */
  committedEntries: Entry[];
  /** to send, only after this batch is persisted */
  messages: Message[];
  readStates: ReadState[];
  softState: SoftState | null;
}

export const ConfChangeOp = { AddLearner: 1, AddVoter: 2, Remove: 3 } as const;
export type ConfChangeOp = (typeof ConfChangeOp)[keyof typeof ConfChangeOp];

export interface ConfChange {
  op: ConfChangeOp;
  node: NodeId;
  /** opaque to the core (e.g. the node's address, a request id) */
  context?: Uint8Array;
}

/** The reason a message or request was refused; given to the injected drop hook. */
export type DropHook = (reason: string, m: Message | null) => void;
