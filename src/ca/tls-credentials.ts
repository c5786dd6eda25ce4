/**
 * gRPC credentials for traffic between nodes: mutual TLS with the cluster's root CA. Nodes are
 * reached by IP, so the name checked is the one every node certificate carries: "tsswarm-node".
 */
import { createHash, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { CertificateError, identityOf, ROLE_OU, type NodeIdentity, type NodeRole } from './node-certs.js';
import { x509 } from './x509.js';

export const TLS_SERVER_NAME = 'tsswarm-node';

export interface NodeTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A name rather than the IP in SNI (which RFC 6066 forbids for addresses).
  'grpc.ssl_target_name_override': TLS_SERVER_NAME,
  'grpc.default_authority': TLS_SERVER_NAME,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

/**
 * This node's CA and identity as grpc-js certificate providers: servers and channels built on it
 * take a renewed certificate for every new connection, without a restart. Listeners hear the
 * current value on the next tick: grpc-js registers its watcher only after adding the listener,
 * so a synchronous answer would be lost.
 */
export class NodeCertificates implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  constructor(private tls: NodeTls) {}

  current(): NodeTls {
    return this.tls;
  }

  update(tls: NodeTls): void {
    this.tls = tls;
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.identityListeners) l(this.identityUpdate());
  }

  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    setImmediate(() => { if (this.caListeners.has(l)) l(this.caUpdate()); });
  }
  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(l);
    setImmediate(() => { if (this.identityListeners.has(l)) l(this.identityUpdate()); });
  }
  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(l);
  }

  private caUpdate() {
    return { caCertificate: Buffer.from(this.tls.caPem) };
  }
  private identityUpdate() {
    return { certificate: Buffer.from(this.tls.certPem), privateKey: Buffer.from(this.tls.keyPem) };
  }
}

function provider(tls: NodeTls | NodeCertificates): NodeCertificates {
  return tls instanceof NodeCertificates ? tls : new NodeCertificates(tls);
}

/**
 * The server asks every client for a certificate but lets those without one in, because a joining
 * node has none yet; handlers that need one call `peerIdentity`.
 */
export function serverCredentials(tls: NodeTls | NodeCertificates): grpc.ServerCredentials {
  const p = provider(tls);
  // Both providers are the same object: grpc-js's parameter names for them disagree across versions.
  return grpc.experimental.createCertificateProviderServerCredentials(p, p, false);
}

/**
 * Nodes are dialled by IP while their certificates name them: the chain is still verified against
 * the swarm's CA, and instead of the host name we require the name every node certificate carries.
 * (Channels that set no name override, such as raft's, then work too.)
 */
const verifyNodeName: grpc.VerifyOptions = {
  checkServerIdentity: (_host, cert) => (
    (cert.subjectaltname ?? '').split(', ').includes(`DNS:${TLS_SERVER_NAME}`)
      ? undefined
      : new Error(`the peer's certificate (${cert.subject?.CN ?? 'no CN'}) is not a tsswarm node certificate`)),
};

export function clientCredentials(tls: NodeTls | NodeCertificates): grpc.ChannelCredentials {
  const p = provider(tls);
  return grpc.experimental.createCertificateProviderChannelCredentials(p, p, verifyNodeName);
}

/** For a joiner that has the CA (pinned by its token) but no certificate of its own yet. */
export function anonymousClientCredentials(caPem: string): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(caPem), null, null, verifyNodeName);
}

/** Only to fetch the root CA, whose digest the caller then checks against its join token. */
export function unverifiedClientCredentials(): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
}

const verified = new Map<string, NodeIdentity>();

/**
 * Who is calling, proven: the client's certificate (it proved the key in the handshake) checked
 * against our CA here, since the server admits clients without one. Cached by fingerprint.
 */
export async function peerIdentity(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null }, caPem: string): Promise<NodeIdentity> {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw || raw.length === 0) throw new CertificateError('this call needs a node certificate; join the swarm first');
  const key = createHash('sha256').update(caPem).update(raw).digest('hex');
  const hit = verified.get(key);
  if (hit) return hit;
  const cert = new x509.X509Certificate(new Uint8Array(raw));
  const ca = new x509.X509Certificate(caPem);
  if (!(await cert.verify({ publicKey: ca.publicKey, date: new Date() }))) {
    throw new CertificateError(`certificate ${cert.subject} is not signed by this swarm's CA or has expired`);
  }
  const who = identityOf(cert);
  if (verified.size > 10_000) verified.clear();
  verified.set(key, who);
  return who;
}

/**
 * The same proof as `peerIdentity`, synchronously (Node's own X.509), for gRPC server interceptors,
 * which must decide before the handler runs.
 */
export function peerIdentitySync(auth: { sslPeerCertificate?: { raw?: Buffer } } | null, caPem: string): NodeIdentity {
  const raw = auth?.sslPeerCertificate?.raw;
  if (!raw || raw.length === 0) throw new CertificateError('this call needs a node certificate');
  const cert = new X509Certificate(raw);
  const ca = new X509Certificate(caPem);
  const now = Date.now();
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey) || Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) {
    throw new CertificateError(`certificate ${cert.subject.replace(/\n/g, ', ')} is not signed by this swarm's CA or has expired`);
  }
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(cert.subject)?.[1] ?? '';
  const role = (Object.entries(ROLE_OU).find(([, ou]) => ou === field('OU'))?.[0]) as NodeRole | undefined;
  if (!role) throw new CertificateError(`certificate ${field('CN')} names no tsswarm role`);
  return { nodeId: field('CN'), role, clusterId: field('O') };
}

/**
 * Refuses calls to services under `pathPrefix` (e.g. "/tsswarm.raft.") unless the caller's
 * certificate, checked against the swarm's CA, has `role`: a worker cannot speak raft to managers.
 */
export function requireRole(pathPrefix: string, role: NodeRole, caPem: () => string): grpc.ServerInterceptor {
  return (method, call) => {
    if (!method.path.startsWith(pathPrefix)) return new grpc.ServerInterceptingCall(call);
    let denied: string | undefined;
    try {
      const who = peerIdentitySync(call.getAuthContext(), caPem());
      if (who.role !== role) denied = `${method.path} is for ${role}s; node ${who.nodeId} is a ${who.role}`;
    } catch (err) {
      denied = (err as Error).message;
    }
    if (!denied) return new grpc.ServerInterceptingCall(call);
    const reason = denied;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next();
        call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: `permission denied: ${reason}`, metadata: new grpc.Metadata() });
      },
    });
  };
}
