/**
 * Recovery from a quorum lost for good (etcd's and SwarmKit's --force-new-cluster): a member
 * restarts as the only voter of its cluster, from its own log and snapshot. Its log is kept whole
 * (an entry it holds may have been committed and acknowledged by a leader it can no longer ask),
 * and conf changes that remove every other member are appended at a new term; all of it is then
 * committed by decree. The node id stays the same, so the state that names it stays valid.
 */
import { applyConfChange, encodeConfChange } from './confchange.js';
import { ConfChangeOp, EntryType, type ConfState, type Entry, type HardState, type NodeId, type Snapshot } from './types.js';

export interface ForcedRestart {
  hardState: HardState;
  /** entries to append after the existing log */
  entries: Entry[];
  /** the members removed */
  removed: NodeId[];
}

/** The membership at the end of the log: the snapshot's, then every conf change after it. */
export function confAtEnd(snapshot: Snapshot, entries: Entry[], decode: (data: Uint8Array) => { op: number; node: NodeId } | null): ConfState {
  let conf: ConfState = { voters: snapshot.meta.conf.voters.slice(), learners: snapshot.meta.conf.learners.slice() };
  for (const e of entries) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decode(e.data);
    if (cc) conf = applyConfChange(conf, cc as Parameters<typeof applyConfChange>[1]);
  }
  return conf;
}

/**
 * What to append so that `self` is the only voter. `context(node)` is the opaque conf-change context
 * the node layer expects (it carries no proposer: nobody waits for these entries).
 */
export function forceNewCluster(
  self: NodeId, hardState: HardState, snapshot: Snapshot, entries: Entry[],
  decode: (data: Uint8Array) => { op: number; node: NodeId } | null, context: (node: NodeId) => Uint8Array,
): ForcedRestart {
  const conf = confAtEnd(snapshot, entries, decode);
  const last = entries.length > 0 ? entries[entries.length - 1]! : { index: snapshot.meta.index, term: snapshot.meta.term };
  const term = Math.max(hardState.term, last.term) + 1;
  const removed = [...conf.voters, ...conf.learners].filter((id) => id !== self);
  const changes: { op: typeof ConfChangeOp[keyof typeof ConfChangeOp]; node: NodeId }[] = removed.map((node) => ({ op: ConfChangeOp.Remove, node }));
  if (!conf.voters.includes(self)) changes.unshift({ op: ConfChangeOp.AddVoter, node: self });
  const appended: Entry[] = changes.map((cc, i) => ({
    term, index: last.index + 1 + i, type: EntryType.ConfChange, data: encodeConfChange({ ...cc, context: context(cc.node) }),
  }));
  const end = last.index + appended.length;
  return { hardState: { term, vote: self, commit: end }, entries: appended, removed };
}
