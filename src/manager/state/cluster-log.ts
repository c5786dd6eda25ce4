/** What the manager needs of the replicated log: propose a store change, and read linearizably. */
import type { ApplyResult, Proposal } from './store.js';

export interface ClusterLog {
  /** Resolves once the proposal is committed and applied on this manager, with the apply result. */
  propose(proposal: Proposal): Promise<ApplyResult>;
  /** Resolves once this manager's store reflects every write committed before the call. */
  barrier(): Promise<void>;
  isLeader(): boolean;
}
