/**
 * The cluster store replicated by our raft: the store is raft's state machine, and proposals are
 * store changes. The result of applying a proposal (refused by compare-and-set, say) is kept for a
 * while by index, so the proposer learns what became of its write.
 */
import type { RaftNode, StateMachine } from '../../raft/node.js';
import type { ClusterLog } from './cluster-log.js';
import { ControlError } from '../../api/errors.js';
import { decodeProposal, encodeProposal, StoreError, type ApplyResult, type ClusterStore, type Proposal } from './store.js';

/** Results older than this many entries are forgotten; a proposer waits for far fewer. */
const RESULT_WINDOW = 4096;

export class StoreStateMachine implements StateMachine {
  private readonly results = new Map<number, ApplyResult>();

  constructor(readonly store: ClusterStore) {}

  apply(index: number, data: Uint8Array): void {
    let result: ApplyResult;
    try {
      result = this.store.apply(index, decodeProposal(data));
    } catch (err) {
      // A malformed entry must not stop the log: it is refused like any invalid proposal.
      this.store.appliedIndex = Math.max(this.store.appliedIndex, index);
      result = { ok: false, error: new StoreError(`entry ${index} cannot be applied: ${(err as Error).message}`, 'invalid') };
    }
    this.results.set(index, result);
    this.results.delete(index - RESULT_WINDOW);
  }

  snapshot(): Uint8Array {
    return this.store.snapshot();
  }

  restore(data: Uint8Array): void {
    this.store.restore(data);
  }

  takeResult(index: number): ApplyResult | undefined {
    const r = this.results.get(index);
    this.results.delete(index);
    return r;
  }
}

export class RaftClusterLog implements ClusterLog {
  constructor(private readonly node: RaftNode, private readonly sm: StoreStateMachine) {}

  async propose(proposal: Proposal): Promise<ApplyResult> {
    const index = await this.node.propose(encodeProposal(proposal)).catch((err) => { throw this.unavailable(err, 'write'); });
    return this.sm.takeResult(index) ?? { ok: false, error: new StoreError(`result of entry ${index} is no longer known`, 'conflict') };
  }

  barrier(): Promise<void> {
    return this.node.read().catch((err) => { throw this.unavailable(err, 'read'); });
  }

  /** A raft request that failed: say plainly when the reason is a lost quorum. */
  private unavailable(err: Error, what: 'read' | 'write'): ControlError {
    const removed = this.node.removedReason();
    if (removed) return new ControlError(`${what} refused: ${removed} (swarm leave --force, then swarm join)`, 'unavailable');
    let st: ReturnType<RaftNode['status']>;
    try {
      st = this.node.status();
    } catch {
      // raft not started yet (the manager role is starting or restarting)
      return new ControlError(`${what} failed: this manager is starting; try again shortly (${err.message})`, 'unavailable');
    }
    if (st.lead === 0) {
      const voters = st.conf.voters.length;
      return new ControlError(`no quorum: the swarm has no leader, so this request was not served${what === 'write' ? ' (the write was not acknowledged)' : ''}; more than half of the ${voters} managers must be reachable (if they are lost for good, run "swarm init --force-new-cluster" on a surviving manager)`, 'unavailable');
    }
    return new ControlError(`${what} failed: ${err.message}`, 'unavailable');
  }

  isLeader(): boolean {
    return this.node.isLeader();
  }
}
