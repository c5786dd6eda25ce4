/**
 * The manager role of a daemon: the raft-replicated store, the control logic every manager serves,
 * the CA, and — on the leader only — the dispatcher, orchestrators, scheduler and the promotion of
 * caught-up learners to voters.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ControlError } from '../api/errors.js';
import { newObjectId } from '../api/ids.js';
import { CLUSTER_OBJECT_ID, type ClusterObject, type NetworkObject, type NodeObject } from '../api/objects.js';
import { DEFAULT_CERT_EXPIRY_MS, type RootCA } from '../ca/authority.js';
import { newSecret } from '../ca/join-token.js';
import { RaftNode } from '../raft/node.js';
import { INGRESS_GATEWAY, INGRESS_NETWORK_NAME, INGRESS_SUBNET, INGRESS_VNI } from './allocator/allocator.js';
import { CertificateIssuer } from './certificates.js';
import { ControlService, type ConstraintCheck, type ImageResolver } from './controlapi/control.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { nodeNetworkState, type NetworkStateSource } from './dispatcher/network-view.js';
import { LeaderDuties } from './leader.js';
import { ManagerMembership } from './membership.js';
import type { Placer } from './orchestrator/placement.js';
import { RaftClusterLog, StoreStateMachine } from './state/raft-log.js';
import { ClusterStore } from './state/store.js';

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
  /** This node's registries, for pinning services' images and --with-registry-auth. */
  images?: ImageResolver;
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

export { CLUSTER_OBJECT_ID };
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
  readonly membership: ManagerMembership;
  /** Join tokens and node certificates (certificates.ts). */
  readonly certificates: CertificateIssuer;

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
    this.control = new ControlService(this.store, this.log, opts.checkConstraint, undefined, opts.images);
    this.membership = new ManagerMembership(this.store, this.log, this.raft, opts.logger, opts.nodeId, opts.raftId, opts.forceNewCluster ?? false);
    this.certificates = new CertificateIssuer(this.store, this.log, this.raft, opts.logger, this.membership, () => this.leaderAddr());
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

  /** `swarm update`: a compare-and-set change of the cluster's settings. */
  async updateClusterSpec(change: Partial<ClusterObject['spec']>): Promise<void> {
    const c = await this.freshCluster();
    const r = await this.log.propose({ actions: [{ op: 'update', kind: 'cluster', object: { ...c, spec: { ...c.spec, ...change } }, expectVersion: c.meta.version }], time: new Date().toISOString() });
    if (!r.ok) throw new ControlError(`updating the swarm failed: ${r.error.message}`, 'conflict');
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
      void this.membership.markLeader();
    } else if (!leading && this.duties) {
      this.stepDown();
      this.opts.logger.info('lost leadership: dispatcher and orchestrators stopped');
    }
    if (leading) this.membership.leaderPass();
  }

  private stepDown(): void {
    this.duties?.stop();
    this.dispatcher?.stop();
    this.duties = undefined;
    this.dispatcher = undefined;
  }

}
