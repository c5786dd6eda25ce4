/**
 * The managers' side of the swarm's CA: join tokens (shown, rotated, checked) and node certificates
 * (issued to joiners, renewed for members with the role the swarm now gives them). A joining manager
 * is registered and added to raft as a learner before its certificate is returned.
 */
import type { Logger } from 'pino';
import { ControlError } from '../api/errors.js';
import { newObjectId } from '../api/ids.js';
import { CLUSTER_OBJECT_ID, type ClusterObject, type NodeObject, type NodeRole } from '../api/objects.js';
import { DEFAULT_CERT_EXPIRY_MS, signNodeCertificate } from '../ca/authority.js';
import { formatJoinToken, newSecret, parseJoinToken, secretMatches } from '../ca/join-token.js';
import { caDigest, type NodeIdentity } from '../ca/node-certs.js';
import type { RaftNode } from '../raft/node.js';
import type { ManagerMembership } from './membership.js';
import type { RaftClusterLog } from './state/raft-log.js';
import type { ClusterStore } from './state/store.js';

export class CertificateIssuer {
  constructor(
    private readonly store: ClusterStore,
    private readonly log: RaftClusterLog,
    private readonly raft: RaftNode,
    private readonly logger: Logger,
    private readonly membership: ManagerMembership,
    private readonly leaderAddr: () => string | undefined,
  ) {}

  private cluster(): ClusterObject {
    const c = this.store.get('cluster', CLUSTER_OBJECT_ID);
    if (!c) throw new ControlError('this manager has not caught up with the swarm yet: try again shortly', 'unavailable');
    return c;
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
      raftId = this.membership.newRaftId();
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
        await this.membership.addLearnerWhenFree(raftId, req.advertiseAddr);
      } catch (err) {
        // Not half-joined: the node record goes with the failed membership change.
        await this.log.propose({ actions: [{ op: 'delete', kind: 'node', id: nodeId }], time: new Date().toISOString() }).catch(() => {});
        throw new ControlError(`adding manager ${req.hostname} to raft failed: ${(err as Error).message}`, 'unavailable');
      }
      this.logger.info({ nodeId, raftId, addr: req.advertiseAddr }, 'manager joining as a raft learner');
    }
    return { nodeId, role, certPem, raftId };
  }

  /** A node renews with its current certificate: same id and role, a fresh validity. */
  async renewCertificate(csrPem: string, who: NodeIdentity): Promise<string> {
    const c = await this.freshCluster();
    const node = this.store.get('node', who.nodeId);
    if (!node) throw new ControlError(`node ${who.nodeId} was removed from the swarm: it cannot renew its certificate`, 'invalid');
    // The role is the one the swarm wants now: this is how a promoted or demoted node gets its new one.
    return signNodeCertificate(c.rootCA, csrPem, { nodeId: who.nodeId, role: node.spec.role, clusterId: who.clusterId }, new Date(), c.spec.certExpiryMs || DEFAULT_CERT_EXPIRY_MS);
  }

  private async freshCluster(): Promise<ClusterObject> {
    await this.log.barrier();
    return this.cluster();
  }
}
