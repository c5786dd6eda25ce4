/**
 * This node's membership in a swarm: init, join, leave, and bringing its roles back after a
 * restart. Owns <data-dir>/swarm/: state.json, the certificates, and (managers) the raft log.
 * Every role listens on --listen-addr over mutual TLS; the worker agent runs on every node.
 */
import { randomInt } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { writeFileAtomic } from '../durable-file.js';
import { createRootCA, signNodeCertificate } from '../ca/authority.js';
import { caHandlers, caService, controlHandlers, dispatcherHandlers, dispatcherService } from '../manager/grpc-services.js';
import { Manager } from '../manager/manager.js';
import type { ImageResolver } from '../manager/controlapi/control.js';
import { constraintProblem, nodeMeetsConstraints, SchedulerPlacer } from '../manager/orchestrator/placement.js';
import { newObjectId } from '../api/ids.js';
import { parseJoinToken } from '../ca/join-token.js';
import { caDigest, createNodeKeyAndCsr, identityOf, type NodeRole } from '../ca/node-certs.js';
import { CertificateRenewal } from '../ca/renewal.js';
import {
  anonymousClientCredentials, CHANNEL_OPTIONS, clientCredentials, NodeCertificates, requireRole, serverCredentials, unverifiedClientCredentials, type NodeTls,
} from '../ca/tls-credentials.js';
import { Agent, nodeDescription } from '../agent/agent.js';
import { ContainerAttachments, type ContainerAttachment, type ContainerSandbox } from '../agent/container-attachments.js';
import { TaskExecutor, type Containers } from '../agent/task-executor.js';
import type { NetworkDriver } from '../network/types.js';
import { TASK_LOGS_PATH, taskLogsHandlers, taskLogsService } from '../agent/task-logs.js';

export interface SwarmState {
  clusterId: string;
  nodeId: string;
  role: NodeRole;
  raftId: number;
  advertiseAddr: string;
  listenAddr: string;
  managers: string[];
}

export class SwarmError extends Error {
  constructor(message: string, readonly code: 'conflict' | 'invalid' | 'unavailable' = 'invalid') {
    super(message);
    this.name = 'SwarmError';
  }
}

export interface SwarmNodeOptions {
  dataDir: string;
  localNodeId: string;
  /** This node's name in the swarm. */
  hostname: string;
  defaultListenAddr: string;
  containers: Containers;
  logger: Logger;
  /** Overlay networks of this node; without it, tasks on networks are rejected here. */
  network?: NetworkDriver;
  /** This node's registries, for a manager's `service create|update` (digest pinning, --with-registry-auth). */
  images?: ImageResolver;
}

const DEFAULT_PORT = 2377;

/** "IP" or "IP:PORT" → "IP:PORT"; refuses anything else with one line. */
export function normaliseAddr(flag: string, addr: string, defaultPort = DEFAULT_PORT): string {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(addr.trim());
  if (!m || m[1]!.split('.').some((o) => Number(o) > 255) || (m[2] && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
    throw new SwarmError(`invalid ${flag} "${addr}": expected IP[:PORT]`);
  }
  return `${m[1]}:${m[2] ?? defaultPort}`;
}

export class SwarmNode {
  private state?: SwarmState;
  private server?: grpc.Server;
  private managerRole?: Manager;
  private agent?: Agent;
  private executor?: TaskExecutor;
  private attachments?: ContainerAttachments;
  private readonly dir: string;
  private busy = false;
  private certs?: NodeCertificates;
  private renewal?: CertificateRenewal;

  constructor(private readonly opts: SwarmNodeOptions) {
    this.dir = join(opts.dataDir, 'swarm');
  }

  manager(): Manager | undefined {
    return this.managerRole;
  }

  /** Handlers the daemon serves on its local socket. */
  controlHandlers() {
    return controlHandlers(() => this.managerRole, this.opts.logger);
  }

  /** A standalone container joins a swarm network (`container run --network NAME`). */
  attachContainer(req: { containerId: string; containerName: string; hostname: string; network: string }): Promise<ContainerSandbox> {
    if (!this.state) return Promise.reject(new Error(`network ${req.network} not found: this node is not part of a swarm`));
    if (!this.attachments) return Promise.reject(new Error(`network ${req.network} not found: this node's swarm role is not running`));
    return this.attachments.connect(req);
  }

  detachContainer(attachment: ContainerAttachment): Promise<void> {
    if (!this.attachments) return Promise.reject(new Error('this node\'s swarm role is not running: the attachment is released once it is'));
    return this.attachments.disconnect(attachment);
  }

  /** After a daemon restart: rejoin with the state and certificates on disk. */
  async resume(): Promise<void> {
    const raw = await readFile(join(this.dir, 'state.json'), 'utf8').catch(() => undefined);
    if (!raw) return;
    this.state = JSON.parse(raw) as SwarmState;
    try {
      await this.startRoles(this.state, await this.readTls());
    } catch (err) {
      // Serve nothing half-started: the local API then says plainly that this node is not a manager.
      await this.stopRoles(false).catch(() => {});
      throw err;
    }
    this.opts.logger.info({ nodeId: this.state.nodeId, role: this.state.role }, 'rejoined the swarm');
  }

  info() {
    const s = this.state;
    if (!s) return { clusterId: '', nodeId: '', role: '', nodeAddr: '', managers: [], leaderAddr: '', raftId: 0, caDigest: '' };
    const m = this.managerRole;
    return {
      clusterId: s.clusterId || (this.certs ? identityOf(this.certs.current().certPem).clusterId : ''), nodeId: s.nodeId, role: s.role, nodeAddr: s.advertiseAddr,
      managers: m ? m.managerAddrs() : this.agent?.knownManagers() ?? s.managers,
      leaderAddr: m?.leaderAddr() ?? '', raftId: s.raftId, caDigest: '',
    };
  }

  async init(req: { advertiseAddr: string; listenAddr: string; forceNewCluster: boolean; heartbeatMs?: number; certExpiryMs?: number; taskHistoryLimit?: number }) {
    return this.exclusive(async () => {
      if (req.forceNewCluster) return this.forceNewCluster(req);
      if (this.state) throw new SwarmError('this node is already part of a swarm: leave it first (swarm leave)', 'conflict');
      const listenAddr = normaliseAddr('--listen-addr', req.listenAddr || this.opts.defaultListenAddr);
      const advertiseAddr = normaliseAddr('--advertise-addr', req.advertiseAddr || listenAddr, Number(listenAddr.split(':')[1]));
      if (req.taskHistoryLimit !== undefined && (!Number.isInteger(req.taskHistoryLimit) || req.taskHistoryLimit < -1 || req.taskHistoryLimit > 10_000)) {
        throw new SwarmError('--task-history-limit must be between 0 and 10000');
      }
      if (advertiseAddr.startsWith('0.0.0.0')) throw new SwarmError('--advertise-addr is required when listening on 0.0.0.0: other nodes must know where to reach this one');
      const clusterId = newObjectId();
      const rootCA = await createRootCA(clusterId);
      const { keyPem, csrPem } = await createNodeKeyAndCsr();
      const nodeId = this.opts.localNodeId;
      const certPem = await signNodeCertificate(rootCA, csrPem, { nodeId, role: 'manager', clusterId }, new Date(), req.certExpiryMs || undefined);
      const state: SwarmState = { clusterId, nodeId, role: 'manager', raftId: randomInt(1, 2 ** 31 - 1), advertiseAddr, listenAddr, managers: [advertiseAddr] };
      const tls = { caPem: rootCA.certPem, certPem, keyPem };
      await this.persist(state, tls);
      this.state = state;
      if (req.heartbeatMs !== undefined && (req.heartbeatMs < 0 || (req.heartbeatMs > 0 && req.heartbeatMs < 100))) {
        throw new SwarmError('--dispatcher-heartbeat must be at least 100ms');
      }
      if (req.certExpiryMs && req.certExpiryMs < 10_000) throw new SwarmError('--cert-expiry must be at least 10s');
      await this.startRoles(state, tls, { clusterId, rootCA, heartbeatMs: req.heartbeatMs || undefined, certExpiryMs: req.certExpiryMs || undefined, taskHistoryLimit: req.taskHistoryLimit || undefined });
      this.opts.logger.info({ clusterId, nodeId, advertiseAddr }, 'swarm initialised: this node is its first manager');
      return this.info();
    });
  }

  async join(req: { token: string; remoteAddr: string; advertiseAddr: string; listenAddr: string }) {
    return this.exclusive(async () => {
      if (this.state) throw new SwarmError('this node is already part of a swarm: leave it first (swarm leave)', 'conflict');
      const token = parseJoinToken(req.token);
      const remote = normaliseAddr('manager address', req.remoteAddr);
      const listenAddr = normaliseAddr('--listen-addr', req.listenAddr || this.opts.defaultListenAddr);
      const advertiseAddr = normaliseAddr('--advertise-addr', req.advertiseAddr || listenAddr, Number(listenAddr.split(':')[1]));
      const CA = serviceClient('control.proto', 'tsswarm.swarm.v1.CA');
      // 1. Fetch the root CA without trusting anyone, and pin it by the digest in the token.
      const probe = new CA(remote, unverifiedClientCredentials(), CHANNEL_OPTIONS) as grpc.Client & Record<string, Function>;
      const root = await call<{ certificate: Buffer }>(probe, 'GetRootCACertificate', {}, `cannot reach the manager at ${remote}`).finally(() => probe.close());
      const caPem = root.certificate.toString();
      if (caDigest(caPem) !== token.caDigestHex) {
        throw new SwarmError(`the manager at ${remote} presented a CA that does not match the join token: refusing to join`);
      }
      // 2. Over a channel verified against that CA, trade the token for a certificate.
      const { keyPem, csrPem } = await createNodeKeyAndCsr();
      const ca = new CA(remote, anonymousClientCredentials(caPem), CHANNEL_OPTIONS) as grpc.Client & Record<string, Function>;
      const issued = await call<{ nodeId: string; role: NodeRole; certificate: Buffer; managers: string[]; raftId: number }>(
        ca, 'IssueNodeCertificate', { csr: Buffer.from(csrPem), token: req.token, hostname: this.opts.hostname, advertiseAddr }, `joining through ${remote} failed`,
      ).finally(() => ca.close());
      const state: SwarmState = {
        clusterId: '', nodeId: issued.nodeId, role: issued.role, raftId: issued.raftId, advertiseAddr, listenAddr,
        managers: issued.managers.length ? issued.managers : [remote],
      };
      const tls = { caPem, certPem: issued.certificate.toString(), keyPem };
      await this.persist(state, tls);
      this.state = state;
      await this.startRoles(state, tls);
      this.opts.logger.info({ nodeId: state.nodeId, role: state.role, manager: remote }, 'joined the swarm');
      return this.info();
    });
  }

  async leave(force: boolean): Promise<void> {
    return this.exclusive(async () => {
      if (!this.state) throw new SwarmError('this node is not part of a swarm', 'conflict');
      if (this.state.role === 'manager' && !force) {
        throw new SwarmError('you are attempting to leave the swarm on a node that is participating as a manager: removing this node leaves fewer managers for quorum; use --force to ignore this message');
      }
      await this.stopRoles(true);
      await this.opts.network?.close().catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'removing the overlay networks failed'));
      await rm(this.dir, { recursive: true, force: true });
      this.state = undefined;
      this.opts.logger.info('left the swarm');
    });
  }

  async joinToken(role: string, rotate: boolean) {
    const m = this.managerRole;
    if (!m) throw new SwarmError('this node is not a swarm manager: join tokens are only available on managers', 'unavailable');
    if (role !== 'worker' && role !== 'manager') throw new SwarmError(`unknown role "${role}": expected worker or manager`);
    const token = rotate ? await m.certificates.rotateJoinToken(role) : m.certificates.joinToken(role);
    return { token, managerAddr: this.state!.advertiseAddr };
  }

  /** `swarm update`: changes the cluster's settings (on a manager). */
  async update(req: { taskHistoryLimit?: number; autoRebalance?: string }): Promise<void> {
    const m = this.managerRole;
    if (!m) throw new SwarmError('this node is not a swarm manager: run swarm update on a manager', 'unavailable');
    const limit = req.taskHistoryLimit;
    if (limit && (!Number.isInteger(limit) || limit < -1 || limit > 10_000)) throw new SwarmError('--task-history-limit must be between 0 and 10000');
    const rebalance = req.autoRebalance ?? '';
    if (!['', 'true', 'false'].includes(rebalance)) throw new SwarmError(`--auto-rebalance must be true or false, not "${rebalance}"`);
    const change: { taskHistoryLimit?: number; autoRebalance?: boolean } = {};
    if (limit) change.taskHistoryLimit = Math.max(0, limit);
    if (rebalance) change.autoRebalance = rebalance === 'true';
    if (Object.keys(change).length === 0) throw new SwarmError('nothing to update: give --task-history-limit or --auto-rebalance');
    await m.updateClusterSpec(change);
  }

  async close(): Promise<void> {
    await this.stopRoles(false);
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new SwarmError('another swarm operation is in progress', 'conflict');
    this.busy = true;
    try { return await fn(); } finally { this.busy = false; }
  }

  /**
   * Recover from lost quorum: restart raft with this manager as the only member, from its own log
   * and snapshot (the store, the node id and the certificates stay); it leads at once, and workers
   * reconnect to it through their session failover.
   */
  private async forceNewCluster(req: { advertiseAddr: string; listenAddr: string }) {
    const s = this.state;
    if (!s || s.role !== 'manager') throw new SwarmError('--force-new-cluster recovers a manager of an existing swarm, and this node is not one', 'conflict');
    if (req.advertiseAddr && normaliseAddr('--advertise-addr', req.advertiseAddr, Number(s.advertiseAddr.split(':')[1])) !== s.advertiseAddr) {
      throw new SwarmError(`--force-new-cluster keeps this manager's address ${s.advertiseAddr}; it cannot change it`);
    }
    const tls = this.certs?.current() ?? await this.readTls();
    await this.stopRoles(false);
    const next: SwarmState = { ...s, managers: [s.advertiseAddr] };
    await this.persist(next, tls);
    this.state = next;
    await this.startRoles(next, tls, undefined, true);
    this.opts.logger.warn({ nodeId: s.nodeId, raftId: s.raftId }, 'forced a new cluster from this manager\'s state');
    return this.info();
  }

  private async persist(state: SwarmState, tls: NodeTls): Promise<void> {
    await mkdir(join(this.dir, 'certificates'), { recursive: true, mode: 0o700 });
    await writeFile(join(this.dir, 'certificates', 'swarm-root-ca.crt'), tls.caPem);
    await writeFile(join(this.dir, 'certificates', 'swarm-node.crt'), tls.certPem);
    await writeFileAtomic(join(this.dir, 'certificates', 'swarm-node.key'), tls.keyPem);
    await writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify(state, null, 2));
  }

  private async readTls(): Promise<NodeTls> {
    const cert = (f: string) => readFile(join(this.dir, 'certificates', f), 'utf8');
    return { caPem: await cert('swarm-root-ca.crt'), certPem: await cert('swarm-node.crt'), keyPem: await cert('swarm-node.key') };
  }

  private async startRoles(state: SwarmState, tls: NodeTls, bootstrap?: { clusterId: string; rootCA: { certPem: string; keyPem: string }; heartbeatMs?: number; certExpiryMs?: number; taskHistoryLimit?: number }, forceNewCluster = false): Promise<void> {
    const certs = new NodeCertificates(tls);
    this.certs = certs;
    const server = new grpc.Server({
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_permit_without_calls': 1,
      interceptors: [requireRole('/tsswarm.raft.', 'manager', () => certs.current().caPem), requireRole(TASK_LOGS_PATH, 'manager', () => certs.current().caPem)],
    });
    this.server = server;
    const logger = this.opts.logger;
    if (state.role === 'manager') {
      this.managerRole = new Manager({
        nodeId: state.nodeId, raftId: state.raftId, advertiseAddr: state.advertiseAddr,
        raftDataDir: join(this.dir, 'raft'), server, channelCredentials: clientCredentials(certs),
        logger: logger.child({ role: 'manager' }), placer: new SchedulerPlacer('spread'),
        checkConstraint: constraintProblem, nodeMatches: nodeMeetsConstraints, ...(this.opts.images ? { images: this.opts.images } : {}),
        ...(bootstrap?.heartbeatMs ? { heartbeatPeriodMs: bootstrap.heartbeatMs } : {}),
        ...(bootstrap?.certExpiryMs ? { certExpiryMs: bootstrap.certExpiryMs } : {}),
        ...(bootstrap?.taskHistoryLimit ? { taskHistoryLimit: Math.max(0, bootstrap.taskHistoryLimit) } : {}),
        ...(forceNewCluster ? { forceNewCluster: true } : {}),
        ...(bootstrap ? { bootstrap: { clusterId: bootstrap.clusterId, rootCA: bootstrap.rootCA, description: nodeDescription(this.opts.hostname) } } : {}),
      });
    }
    server.addService(caService(), caHandlers(() => this.managerRole, logger));
    server.addService(dispatcherService(), dispatcherHandlers(() => this.managerRole, logger));
    server.addService(taskLogsService(), taskLogsHandlers(() => this.opts.containers, logger));
    await new Promise<void>((ok, fail) => server.bindAsync(state.listenAddr, serverCredentials(certs), (err) => (err ? fail(new SwarmError(`cannot listen on ${state.listenAddr}: ${err.message}`)) : ok())));
    await this.managerRole?.start();

    const agent = new Agent({
      managers: state.role === 'manager' ? [state.advertiseAddr] : state.managers,
      credentials: clientCredentials(certs), addr: state.advertiseAddr.split(':')[0]!, logger: logger.child({ role: 'agent' }),
      hostname: this.opts.hostname, advertiseAddr: state.advertiseAddr,
      onRole: (role, raftId) => this.followRole(role, raftId), network: this.opts.network,
      onAttachments: (assignments) => this.attachments?.reconcile(assignments),
    });
    this.agent = agent;
    if (this.opts.network) {
      this.attachments = new ContainerAttachments({
        managers: agent, driver: this.opts.network, log: logger.child({ role: 'attachments' }),
        containerIds: () => new Set(this.opts.containers.list(true).map((c) => c.id)),
      });
    }
    this.executor = new TaskExecutor(this.opts.containers, agent.report, logger.child({ role: 'executor' }), this.opts.network);
    agent.start(this.executor);
    this.renewal = new CertificateRenewal({
      certs, logger,
      currentManager: () => this.agent?.currentManager() ?? (state.role === 'manager' ? state.advertiseAddr : state.managers[0]!),
      persist: (next) => this.persist(this.state ?? state, next),
    });
    this.renewal.start();
  }

  /**
   * Promotion and demotion reach the node on its session: it gets a certificate for the new role,
   * then restarts its roles (containers keep running and are adopted again). A promoted node waits
   * for the raft id the leader gives it.
   */
  private followRole(role: NodeRole, raftId: number): void {
    const state = this.state;
    if (!state || this.busy || state.role === role || (role === 'manager' && !raftId)) return;
    setImmediate(() => {
      void this.exclusive(async () => {
        const s = this.state;
        if (!s || s.role === role) return;
        this.opts.logger.info({ from: s.role, to: role, raftId }, 'changing role');
        const managers = this.agent?.knownManagers() ?? s.managers;
        // Ask another manager: a demoted one may no longer reach raft itself.
        await this.renewal!.renewIfDue(true, managers.filter((m) => m !== s.advertiseAddr));
        const tls = this.certs!.current();
        await this.stopRoles(false);
        if (role === 'worker') await rm(join(this.dir, 'raft'), { recursive: true, force: true });
        const next: SwarmState = { ...s, role, raftId: role === 'manager' ? raftId : 0, managers };
        await this.persist(next, tls);
        this.state = next;
        await this.startRoles(next, tls);
      }).catch((err) => {
        this.opts.logger.error({ err: (err as Error).message }, 'role change failed; retrying');
        setTimeout(() => this.followRole(role, raftId), 2000);
      });
    });
  }

  /** Stops the roles; with `removeTasks`, the containers of swarm tasks go too (leave). */
  private async stopRoles(removeTasks: boolean): Promise<void> {
    this.renewal?.stop();
    this.renewal = undefined;
    this.certs = undefined;
    this.agent?.stop();
    this.agent = undefined;
    this.attachments = undefined;
    if (removeTasks && this.executor) await this.executor.assign([], true).catch(() => {});
    await this.executor?.settle();
    this.executor = undefined;
    await this.managerRole?.stop();
    this.managerRole = undefined;
    // Session streams never end on their own: give calls a moment, then cut them.
    const server = this.server;
    if (server) {
      await Promise.race([new Promise<void>((r) => server.tryShutdown(() => r())), new Promise((r) => setTimeout(r, 500))]);
      server.forceShutdown();
    }
    this.server = undefined;
  }
}

function call<T>(client: grpc.Client & Record<string, Function>, method: string, req: object, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!(req, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null, res: T) => {
      if (err) reject(new SwarmError(`${what}: ${err.details || err.message}`, err.code === grpc.status.UNAVAILABLE ? 'unavailable' : 'invalid'));
      else resolve(res);
    });
  });
}
