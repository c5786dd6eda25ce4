/**
 * The manager role of a daemon: the raft-replicated store, the control logic every manager serves,
 * the CA, and — on the leader only — the dispatcher, orchestrators, scheduler and the promotion of
 * caught-up learners to voters.
 */
import { randomInt } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { RaftNode } from '../raft/node.js';
import { formatJoinToken, newSecret, parseJoinToken, secretMatches } from '../ca/join-token.js';
import { caDigest } from '../ca/node-certs.js';
import { DEFAULT_CERT_EXPIRY_MS, signNodeCertificate, type RootCA } from '../ca/authority.js';
import type { NodeIdentity } from '../ca/node-certs.js';
import { ControlService, type ConstraintCheck } from './controlapi/control.js';
import { ControlError } from '../api/errors.js';
import { newObjectId } from '../api/ids.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { LeaderDuties } from './leader.js';
import type { Placer } from './orchestrator/placement.js';
import { INGRESS_GATEWAY, INGRESS_NETWORK_NAME, INGRESS_SUBNET, INGRESS_VNI } from './allocator/allocator.js';
import { nodeNetworkState, type NetworkStateSource } from './dispatcher/network-view.js';
import type { ClusterObject, NetworkObject, NodeObject, NodeRole } from '../api/objects.js';
import { RaftClusterLog, StoreStateMachine } from './state/raft-log.js';
import { recordRemovedNodes } from './state/removed-nodes.js';
import { ClusterStore, type Action } from './state/store.js';

export interface ManagerOptions {
  nodeId: string;
  raftId: number;
  /** host:port other managers and workers use for this manager */
  advertiseAddr: string;
  raftDataDir: string;
  server: grpc.Server;
  channelCredentials: grpc.ChannelCredentials;
  logger: Logger;
  placer: Placer;
  checkConstraint?: ConstraintCheck;
  nodeMatches?: ConstructorParameters<typeof LeaderDuties>[0]['nodeMatches'];
  /** First manager of a new swarm: the cluster to create. Omitted when joining or restarting. */
  bootstrap?: { clusterId: string; rootCA: RootCA; description: NodeObject['description'] };
  heartbeatPeriodMs?: number;
  /** `swarm init --force-new-cluster`: restart raft with this manager as its only member. */
  forceNewCluster?: boolean;
  /** Validity of node certificates in a new swarm; nodes renew at 50–80% of it. */
  certExpiryMs?: number;
  /** Finished tasks kept per slot in a new swarm (default 5). */
  taskHistoryLimit?: number;
  tickMs?: number;
  electionTicks?: number;
}

export const CLUSTER_OBJECT_ID = 'cluster';
/** A node is down after 3 missed heartbeats: 6 s by default, so a lost worker's tasks run elsewhere within 10 s (Docker: 5 s, ~15 s). */
export const DEFAULT_HEARTBEAT_MS = 2000;

export class Manager {
  readonly store = new ClusterStore();
  readonly raft: RaftNode;
  readonly log: RaftClusterLog;
  readonly control: ControlService;
  private dispatcher?: Dispatcher;
  private duties?: LeaderDuties;
  private leaderWatch?: NodeJS.Timeout;
  private promoting = new Set<number>();
  private reachabilityCheckedAt = 0;
  private reconcilingManagers = false;
  /** after --force-new-cluster: the other managers are still in the store until the new leader removes them */
  private lostManagersToRemove: boolean;

  constructor(private readonly opts: ManagerOptions) {
    const sm = new StoreStateMachine(this.store);
    this.raft = new RaftNode({
      id: opts.raftId,
      dataDir: opts.raftDataDir,
      address: opts.advertiseAddr,
      ...(opts.bootstrap ? { initialMembers: new Map([[opts.raftId, opts.advertiseAddr]]) } : {}),
      ...(opts.forceNewCluster ? { forceNewCluster: true } : {}),
      stateMachine: sm,
      server: opts.server,
      channelCredentials: opts.channelCredentials,
      tickMs: opts.tickMs ?? 100,
      // 0.7-1.4 s without a heartbeat (every 100 ms) starts an election: a lost leader's
      // successor acknowledges writes within 2 s (cluster-test leader-kill).
      electionTicks: opts.electionTicks ?? 7,
      heartbeatTicks: 1,
      snapshotEvery: 10_000,
      log: (level, msg) => opts.logger[level]({ component: 'raft' }, msg),
    });
    this.log = new RaftClusterLog(this.raft, sm);
    this.control = new ControlService(this.store, this.log, opts.checkConstraint);
    this.lostManagersToRemove = opts.forceNewCluster ?? false;
  }

  async start(): Promise<void> {
    await this.raft.start();
    if (this.opts.bootstrap) await this.bootstrapCluster(this.opts.bootstrap);
    this.leaderWatch = setInterval(() => this.followLeadership(), 100);
    this.followLeadership();
  }

  async stop(): Promise<void> {
    clearInterval(this.leaderWatch);
    this.stepDown();
    await this.raft.stop();
  }

  cluster(): ClusterObject {
    const c = this.store.get('cluster', CLUSTER_OBJECT_ID);
    if (!c) throw new ControlError('this manager has not caught up with the swarm yet: try again shortly', 'unavailable');
    return c;
  }

  /** This manager's client credentials for the cluster (node certificate): e.g. to read task logs from nodes. */
  clusterCredentials(): grpc.ChannelCredentials {
    return this.opts.channelCredentials;
  }

  /** The dispatcher, when this manager leads; else where the leader is. */
  leaderDispatcher(): { dispatcher?: Dispatcher; leaderAddr?: string } {
    if (this.dispatcher && this.raft.isLeader()) return { dispatcher: this.dispatcher };
    return { leaderAddr: this.leaderAddr() };
  }

  leaderAddr(): string | undefined {
    const lead = this.raft.status().lead;
    return this.store.list('node').find((n) => n.managerStatus?.raftId === lead)?.managerStatus?.addr;
  }

  managerAddrs(): string[] {
    return this.store.list('node').filter((n) => n.managerStatus).map((n) => n.managerStatus!.addr);
  }

  joinToken(role: NodeRole): string {
    const c = this.cluster();
    return formatJoinToken(caDigest(c.rootCA.certPem), c.joinSecrets[role]);
  }

  async rotateJoinToken(role: NodeRole): Promise<string> {
    const c = await this.freshCluster();
    const next: ClusterObject = { ...c, joinSecrets: { ...c.joinSecrets, [role]: newSecret() } };
    const r = await this.log.propose({ actions: [{ op: 'update', kind: 'cluster', object: next, expectVersion: c.meta.version }], time: new Date().toISOString() });
    if (!r.ok) throw new ControlError(`rotating the ${role} join token failed: ${r.error.message}`, 'conflict');
    return this.joinToken(role);
  }

  /**
   * Checks a join token and signs the joiner's certificate. A new manager is also added to raft
   * as a learner (the leader promotes it once it has caught up).
   */
  async issueCertificate(req: { csrPem: string; token: string; hostname: string; advertiseAddr: string }): Promise<{ nodeId: string; role: NodeRole; certPem: string; raftId: number }> {
    const c = await this.freshCluster();
    const parsed = parseJoinToken(req.token);
    if (parsed.caDigestHex !== caDigest(c.rootCA.certPem)) throw new ControlError('the join token is for another swarm (its CA digest does not match)', 'invalid');
    const role: NodeRole | undefined = secretMatches(parsed.secret, c.joinSecrets.manager) ? 'manager'
      : secretMatches(parsed.secret, c.joinSecrets.worker) ? 'worker' : undefined;
    if (!role) throw new ControlError('invalid join token: it was rotated or never valid', 'invalid');
    const nodeId = newObjectId();
    const certPem = await signNodeCertificate(c.rootCA, req.csrPem, { nodeId, role, clusterId: c.id }, new Date(), c.spec.certExpiryMs || DEFAULT_CERT_EXPIRY_MS);
    let raftId = 0;
    if (role === 'manager') {
      if (!this.raft.isLeader()) throw new ControlError(`managers join through the leader${this.leaderAddr() ? ` at ${this.leaderAddr()}` : ''}`, 'unavailable');
      if (!req.advertiseAddr) throw new ControlError('a joining manager must give its advertise address', 'invalid');
      raftId = this.newRaftId();
      const node: NodeObject = {
        id: nodeId, meta: { version: 0, createdAt: '', updatedAt: '' },
        spec: { role: 'manager', availability: 'active', labels: {} },
        description: { hostname: req.hostname, platform: { os: 'linux', arch: '' }, resources: { nanoCpus: 0, memoryBytes: 0, generic: {} }, engineLabels: {} },
        status: { state: 'unknown', message: 'joining', addr: req.advertiseAddr.split(':')[0] ?? '' },
        managerStatus: { raftId, addr: req.advertiseAddr, reachability: 'unknown', leader: false },
      };
      const r = await this.log.propose({ actions: [{ op: 'create', kind: 'node', object: node }], time: new Date().toISOString() });
      if (!r.ok) throw new ControlError(`registering manager ${req.hostname} failed: ${r.error.message}`, 'conflict');
      try {
        await this.addLearnerWhenFree(raftId, req.advertiseAddr);
      } catch (err) {
        // Not half-joined: the node record goes with the failed membership change.
        await this.log.propose({ actions: [{ op: 'delete', kind: 'node', id: nodeId }], time: new Date().toISOString() }).catch(() => {});
        throw new ControlError(`adding manager ${req.hostname} to raft failed: ${(err as Error).message}`, 'unavailable');
      }
      this.opts.logger.info({ nodeId, raftId, addr: req.advertiseAddr }, 'manager joining as a raft learner');
    }
    return { nodeId, role, certPem, raftId };
  }

  /**
   * Raft takes one membership change at a time: a manager joining while another joins (or a learner
   * is being promoted) waits for its turn instead of failing.
   */
  private async addLearnerWhenFree(raftId: number, addr: string): Promise<void> {
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

  /** `swarm update`: a compare-and-set change of the cluster's settings. */
  async updateClusterSpec(change: Partial<ClusterObject['spec']>): Promise<void> {
    const c = await this.freshCluster();
    const r = await this.log.propose({ actions: [{ op: 'update', kind: 'cluster', object: { ...c, spec: { ...c.spec, ...change } }, expectVersion: c.meta.version }], time: new Date().toISOString() });
    if (!r.ok) throw new ControlError(`updating the swarm failed: ${r.error.message}`, 'conflict');
  }

  /** A node renews with its current certificate: same id and role, a fresh validity. */
  async renewCertificate(csrPem: string, who: NodeIdentity): Promise<string> {
    const c = await this.freshCluster();
    const node = this.store.get('node', who.nodeId);
    if (!node) throw new ControlError(`node ${who.nodeId} was removed from the swarm: it cannot renew its certificate`, 'invalid');
    // The role is the one the swarm wants now: this is how a promoted or demoted node gets its new one.
    return signNodeCertificate(c.rootCA, csrPem, { nodeId: who.nodeId, role: node.spec.role, clusterId: who.clusterId }, new Date(), c.spec.certExpiryMs || DEFAULT_CERT_EXPIRY_MS);
  }

  private newRaftId(): number {
    const used = new Set(this.store.list('node').map((n) => n.managerStatus?.raftId ?? 0));
    for (;;) {
      const id = randomInt(1, 2 ** 31 - 1);
      if (!used.has(id)) return id;
    }
  }

  private async freshCluster(): Promise<ClusterObject> {
    await this.log.barrier();
    return this.cluster();
  }

  private async bootstrapCluster(b: NonNullable<ManagerOptions['bootstrap']>): Promise<void> {
    await this.waitForLeadership(10_000);
    if (this.store.get('cluster', CLUSTER_OBJECT_ID)) return;
    const now = new Date().toISOString();
    const cluster: ClusterObject = {
      id: CLUSTER_OBJECT_ID, meta: { version: 0, createdAt: '', updatedAt: '' }, swarmId: b.clusterId,
      spec: { taskHistoryLimit: this.opts.taskHistoryLimit ?? 5, heartbeatPeriodMs: this.opts.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_MS, certExpiryMs: this.opts.certExpiryMs ?? DEFAULT_CERT_EXPIRY_MS },
      rootCA: b.rootCA, joinSecrets: { worker: newSecret(), manager: newSecret() },
    };
    const self: NodeObject = {
      id: this.opts.nodeId, meta: { version: 0, createdAt: '', updatedAt: '' },
      spec: { role: 'manager', availability: 'active', labels: {} },
      description: b.description,
      status: { state: 'ready', message: '', addr: this.opts.advertiseAddr.split(':')[0] ?? '' },
      managerStatus: { raftId: this.opts.raftId, addr: this.opts.advertiseAddr, reachability: 'reachable', leader: true },
    };
    const ingress: NetworkObject = {
      id: newObjectId(), meta: { version: 0, createdAt: '', updatedAt: '' }, vni: INGRESS_VNI,
      spec: { name: INGRESS_NETWORK_NAME, driver: 'overlay', subnet: INGRESS_SUBNET, gateway: INGRESS_GATEWAY, attachable: false, labels: {}, ingress: true },
    };
    const r = await this.log.propose({
      actions: [{ op: 'create', kind: 'cluster', object: cluster }, { op: 'create', kind: 'node', object: self }, { op: 'create', kind: 'network', object: ingress }],
      time: now,
    });
    if (!r.ok) throw new Error(`bootstrapping the swarm failed: ${r.error.message}`);
  }

  private async waitForLeadership(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.raft.isLeader()) {
      if (Date.now() > deadline) throw new Error('this manager did not become leader of its new swarm');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private networkSourceCache?: { index: number; source: NetworkStateSource };

  /** The objects every node's network view is made from, listed once per store change, not once per node. */
  private networkSource(): NetworkStateSource {
    const index = this.store.appliedIndex;
    if (this.networkSourceCache?.index !== index) {
      this.networkSourceCache = {
        index,
        source: { networks: this.store.list('network'), services: this.store.list('service'), tasks: this.store.list('task'), nodes: this.store.list('node') },
      };
    }
    return this.networkSourceCache.source;
  }

  /** Starts the leader's duties on election and stops them on losing it. */
  private followLeadership(): void {
    const leading = this.raft.isLeader();
    if (leading && !this.duties && this.store.get('cluster', CLUSTER_OBJECT_ID)) {
      const cluster = this.cluster();
      this.dispatcher = new Dispatcher({
        store: this.store, log: this.log, logger: this.opts.logger.child({ component: 'dispatcher' }),
        heartbeatPeriodMs: cluster.spec.heartbeatPeriodMs, missedHeartbeats: 3, managers: () => this.managerAddrs(),
        networkStateOf: (nodeId) => nodeNetworkState(nodeId, this.networkSource()),
      });
      this.duties = new LeaderDuties({
        store: this.store, log: this.log, dispatcher: this.dispatcher, placer: this.opts.placer,
        logger: this.opts.logger.child({ component: 'orchestrator' }), taskHistoryLimit: cluster.spec.taskHistoryLimit,
        heartbeatPeriodMs: cluster.spec.heartbeatPeriodMs, nodeMatches: this.opts.nodeMatches,
      });
      this.duties.start();
      this.opts.logger.info({ raftId: this.opts.raftId }, 'became leader: dispatcher and orchestrators started');
      void this.markLeader();
    } else if (!leading && this.duties) {
      this.stepDown();
      this.opts.logger.info('lost leadership: dispatcher and orchestrators stopped');
    }
    if (leading) {
      if (this.lostManagersToRemove) void this.removeLostManagers();
      void this.reconcileManagers();
      void this.promoteCaughtUpLearners();
      if (Date.now() - this.reachabilityCheckedAt > 1000) {
        this.reachabilityCheckedAt = Date.now();
        void this.updateReachability();
      }
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
          this.opts.logger.info({ nodeId: n.id, raftId }, 'promoting node: added to raft as a learner');
        } else if (n.spec.role === 'worker' && n.managerStatus) {
          if (n.managerStatus.raftId === this.opts.raftId) {
            // Leave leading to a caught-up peer first; the new leader then removes this one.
            await this.raft.transferLeadership().catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'cannot hand over leadership before demotion'));
            return;
          }
          const st = this.raft.status();
          if (st.conf.voters.includes(n.managerStatus.raftId) || st.conf.learners.includes(n.managerStatus.raftId)) {
            await this.raft.remove(n.managerStatus.raftId);
          }
          const fresh = this.store.get('node', n.id)!;
          const { managerStatus: _gone, ...rest } = fresh;
          await this.log.propose({ actions: [{ op: 'update', kind: 'node', object: rest, expectVersion: fresh.meta.version }], time: new Date().toISOString() });
          this.opts.logger.info({ nodeId: n.id }, 'demoted node removed from raft');
        }
      }
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'manager membership change failed; will retry');
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
    const lost = this.store.list('node').filter((n) => n.managerStatus && n.id !== this.opts.nodeId && !members.has(n.managerStatus.raftId));
    if (lost.length === 0) return;
    const actions: Action[] = [
      ...lost.map((n) => ({ op: 'delete' as const, kind: 'node' as const, id: n.id, expectVersion: n.meta.version })),
      ...recordRemovedNodes(this.store.get('cluster', CLUSTER_OBJECT_ID), lost.map((n) => n.id)),
    ];
    const r = await this.log.propose({ actions, time: new Date().toISOString() }).catch((err: Error) => ({ ok: false as const, error: err }));
    if (!r.ok) {
      this.lostManagersToRemove = true;
      this.opts.logger.warn({ err: r.error.message }, 'removing the lost managers failed; will retry');
      return;
    }
    this.opts.logger.warn({ removed: lost.map((n) => n.description.hostname) }, 'new cluster forced: the other managers were removed from the swarm');
  }

  /** Records, for `node ls`, which managers follow the leader's log. */
  private async updateReachability(): Promise<void> {
    const st = this.raft.status();
    const actions: Action[] = [];
    for (const n of this.store.list('node')) {
      const ms = n.managerStatus;
      if (!ms || ms.raftId === this.opts.raftId) continue;
      const pr = st.progress.get(ms.raftId);
      const reachability: 'reachable' | 'unreachable' = pr && pr.match + 100 >= st.lastIndex && n.status.state !== 'down' ? 'reachable' : 'unreachable';
      if (ms.reachability !== reachability || ms.leader) {
        actions.push({ op: 'update' as const, kind: 'node' as const, object: { ...n, managerStatus: { ...ms, reachability, leader: false } }, expectVersion: n.meta.version });
      }
    }
    if (actions.length) await this.log.propose({ actions, time: new Date().toISOString() }).catch(() => {});
  }

  private stepDown(): void {
    this.duties?.stop();
    this.dispatcher?.stop();
    this.duties = undefined;
    this.dispatcher = undefined;
  }

  /** Records which manager leads, for `node ls`. */
  private async markLeader(): Promise<void> {
    const actions = [];
    for (const n of this.store.list('node')) {
      if (!n.managerStatus) continue;
      const leader = n.managerStatus.raftId === this.opts.raftId;
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
        this.opts.logger.info({ raftId: learner }, 'promoted a caught-up learner to voter');
      } catch (err) {
        this.opts.logger.warn({ raftId: learner, err: (err as Error).message }, 'promotion failed; will retry');
      } finally {
        this.promoting.delete(learner);
      }
    }
  }
}
