import { ConfChangeOp, EntryType, type ConfChange, type ConfState, type Entry, type NodeId } from './types.js';

/** Layout of a conf-change entry's data: op (1 byte), node id (u32 LE), then opaque context. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(5 + ctx.length);
  out[0] = cc.op;
  new DataView(out.buffer).setUint32(1, cc.node, true);
  out.set(ctx, 5);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange | null {
  if (data.length < 5) return null;
  const op = data[0]!;
  if (op !== ConfChangeOp.AddLearner && op !== ConfChangeOp.AddVoter && op !== ConfChangeOp.Remove) return null;
  const node = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1, true);
  if (node === 0) return null;
  return { op: op as ConfChangeOp, node, context: data.subarray(5) };
}

/** The membership after applying cc (a new object; the input is not changed). */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.filter((v: NodeId) => v !== cc.node);
  const learners = conf.learners.filter((v: NodeId) => v !== cc.node);
  if (cc.op === ConfChangeOp.AddVoter) voters.push(cc.node);
  else if (cc.op === ConfChangeOp.AddLearner) {
    // a voter cannot be demoted to learner by this op: keep it a voter
    if (conf.voters.includes(cc.node)) voters.push(cc.node);
    else learners.push(cc.node);
  }
  voters.sort((a, b) => a - b);
  learners.sort((a, b) => a - b);
  return { voters, learners };
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: c.voters.slice(), learners: c.learners.slice() };
}

/**
 * The first log entries of a new cluster: one AddVoter per initial member, at term 1, committed.
 * Every initial member starts from the same entries, and a node that joins later learns the initial
 * membership by replaying them (the membership lives in the log, not in local configuration).
 */
export function bootstrapEntries(voters: NodeId[], context?: (node: NodeId) => Uint8Array): Entry[] {
  return voters.map((node, i) => ({
    term: 1, index: i + 1, type: EntryType.ConfChange,
    data: encodeConfChange(context ? { op: ConfChangeOp.AddVoter, node, context: context(node) } : { op: ConfChangeOp.AddVoter, node }),
  }));
}
