/**
 * Which managers are raft members, kept true by the leader: joining managers wait their turn as
 * learners and are promoted once caught up, `node promote|demote` move nodes in and out of raft,
 * managers lost to --force-new-cluster are removed, and `node ls` learns who leads and who follows.
 */
import type { Logger } from 'pino';
import { randomInt } from 'node:crypto';
import { CLUSTER_OBJECT_ID } from '../api/objects.js';
import type { RaftNode } from '../raft/node.js';
import type { RaftClusterLog } from './state/raft-log.js';
import { recordRemovedNodes } from './state/removed-nodes.js';
import type { Action, ClusterStore } from './state/store.js';

export class ManagerMembership {
  private promoting = new Set<number>();
  private reachabilityCheckedAt = 0;
  private reconcilingManagers = false;
  /** after --force-new-cluster: the other managers are still in the store until the new leader removes them */
  private lostManagersToRemove: boolean;

  constructor(
    private readonly store: ClusterStore,
    private readonly log: RaftClusterLog,
    private readonly raft: RaftNode,
    private readonly logger: Logger,
    private readonly nodeId: string,
    private readonly raftId: number,
    forceNewCluster: boolean,
  ) {
    this.lostManagersToRemove = forceNewCluster;
  }

  /** One pass of the leader's membership duties (run every 100 ms while leading). */
  leaderPass(): void {
    if (this.lostManagersToRemove) void this.removeLostManagers();
    void this.reconcileManagers();
    void this.promoteCaughtUpLearners();
    if (Date.now() - this.reachabilityCheckedAt > 1000) {
      this.reachabilityCheckedAt = Date.now();
      void this.updateReachability();
    }
  }

  /**
   * Raft takes one membership change at a time: a manager joining while another joins (or a learner
   * is being promoted) waits for its turn instead of failing.
   */
  async addLearnerWhenFree(raftId: number, addr: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      try {
        await this.raft.addLearner(raftId, addr);
        return;
      } catch (err) {
        if (!/another conf change is not yet applied/.test((err as Error).message) || Date.now() + delay > deadline) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  newRaftId(): number {
    const used = new Set(this.store.list('node').map((n) => n.managerStatus?.raftId ?? 0));
    for (;;) {
      const id = randomInt(1, 2 ** 31 - 1);
      if (!used.has(id)) return id;
    }
  }

  /**
   * Follows `node promote|demote`: a node that should be a manager gets a raft id and is added as a
   * learner (it joins raft when it hears its new role on its session); a demoted manager leaves raft.
   */
  private async reconcileManagers(): Promise<void> {
    if (this.reconcilingManagers) return;
    this.reconcilingManagers = true;
    try {
      for (const n of this.store.list('node')) {
        if (n.spec.role === 'manager' && !n.managerStatus && n.status.state === 'ready' && n.advertiseAddr) {
          const raftId = this.newRaftId();
          const r = await this.log.propose({
            actions: [{ op: 'update', kind: 'node', object: { ...n, managerStatus: { raftId, addr: n.advertiseAddr, reachability: 'unknown', leader: false } }, expectVersion: n.meta.version }],
            time: new Date().toISOString(),
          });
          if (!r.ok) continue;
          await this.raft.addLearner(raftId, n.advertiseAddr);
          this.logger.info({ nodeId: n.id, raftId }, 'promoting node: added to raft as a learner');
        } else if (n.spec.role === 'worker' && n.managerStatus) {
          if (n.managerStatus.raftId === this.raftId) {
            // Leave leading to a caught-up peer first; the new leader then removes this one.
            await this.raft.transferLeadership().catch((err) => this.logger.warn({ err: (err as Error).message }, 'cannot hand over leadership before demotion'));
            return;
          }
          const st = this.raft.status();
          if (st.conf.voters.includes(n.managerStatus.raftId) || st.conf.learners.includes(n.managerStatus.raftId)) {
            await this.raft.remove(n.managerStatus.raftId);
          }
          const fresh = this.store.get('node', n.id)!;
          const { managerStatus: _gone, ...rest } = fresh;
          await this.log.propose({ actions: [{ op: 'update', kind: 'node', object: rest, expectVersion: fresh.meta.version }], time: new Date().toISOString() });
          this.logger.info({ nodeId: n.id }, 'demoted node removed from raft');
        }
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'manager membership change failed; will retry');
    } finally {
      this.reconcilingManagers = false;
    }
  }

  /**
   * After --force-new-cluster: the managers raft no longer has are deleted from the node list (their
   * tasks are then orphaned and replaced, as for any lost node); their certificates can no longer be
   * renewed. Workers find this manager through their session failover.
   */
  private async removeLostManagers(): Promise<void> {
    if (!this.store.get('cluster', CLUSTER_OBJECT_ID)) return;
    this.lostManagersToRemove = false;
    const members = new Set([...this.raft.status().conf.voters, ...this.raft.status().conf.learners]);
    const lost = this.store.list('node').filter((n) => n.managerStatus && n.id !== this.nodeId && !members.has(n.managerStatus.raftId));
    if (lost.length === 0) return;
    const actions: Action[] = [
      ...lost.map((n) => ({ op: 'delete' as const, kind: 'node' as const, id: n.id, expectVersion: n.meta.version })),
      ...recordRemovedNodes(this.store.get('cluster', CLUSTER_OBJECT_ID), lost.map((n) => n.id)),
    ];
    const r = await this.log.propose({ actions, time: new Date().toISOString() }).catch((err: Error) => ({ ok: false as const, error: err }));
    if (!r.ok) {
      this.lostManagersToRemove = true;
      this.logger.warn({ err: r.error.message }, 'removing the lost managers failed; will retry');
      return;
    }
    this.logger.warn({ removed: lost.map((n) => n.description.hostname) }, 'new cluster forced: the other managers were removed from the swarm');
  }

  /** Records, for `node ls`, which managers follow the leader's log. */
  private async updateReachability(): Promise<void> {
    const st = this.raft.status();
    const actions: Action[] = [];
    for (const n of this.store.list('node')) {
      const ms = n.managerStatus;
      if (!ms || ms.raftId === this.raftId) continue;
      const pr = st.progress.get(ms.raftId);
      const reachability: 'reachable' | 'unreachable' = pr && pr.match + 100 >= st.lastIndex && n.status.state !== 'down' ? 'reachable' : 'unreachable';
      if (ms.reachability !== reachability || ms.leader) {
        actions.push({ op: 'update' as const, kind: 'node' as const, object: { ...n, managerStatus: { ...ms, reachability, leader: false } }, expectVersion: n.meta.version });
      }
    }
    if (actions.length) await this.log.propose({ actions, time: new Date().toISOString() }).catch(() => {});
  }

  /** Records which manager leads, for `node ls`. */
  async markLeader(): Promise<void> {
    const actions = [];
    for (const n of this.store.list('node')) {
      if (!n.managerStatus) continue;
      const leader = n.managerStatus.raftId === this.raftId;
      if (n.managerStatus.leader !== leader || (leader && n.managerStatus.reachability !== 'reachable')) {
        actions.push({ op: 'update' as const, kind: 'node' as const, object: { ...n, managerStatus: { ...n.managerStatus, leader, ...(leader ? { reachability: 'reachable' as const } : {}) } }, expectVersion: n.meta.version });
      }
    }
    if (actions.length) await this.log.propose({ actions, time: new Date().toISOString() }).catch(() => {});
  }

  /** A learner whose log is within a few entries of ours becomes a voter. */
  private async promoteCaughtUpLearners(): Promise<void> {
    const st = this.raft.status();
    for (const learner of st.conf.learners) {
      const pr = st.progress.get(learner);
      if (!pr || this.promoting.has(learner) || pr.match + 5 < st.lastIndex) continue;
      this.promoting.add(learner);
      try {
        await this.raft.promote(learner);
        this.logger.info({ raftId: learner }, 'promoted a caught-up learner to voter');
      } catch (err) {
        this.logger.warn({ raftId: learner, err: (err as Error).message }, 'promotion failed; will retry');
      } finally {
        this.promoting.delete(learner);
      }
    }
  }
}
