/**
 * A node's side of the cluster PKI: its key and CSR, what its certificate says (id, role, cluster),
 * when to renew, and the CA digest that join tokens pin.
 */
import { createHash } from 'node:crypto';
import { x509, generateKeyPair, KEY_ALGORITHM, privateKeyPem } from './x509.js';

export type NodeRole = 'manager' | 'worker';
export const ROLE_OU: Record<NodeRole, string> = { manager: 'swarm-manager', worker: 'swarm-worker' };

export interface NodeIdentity {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
}

export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

/** sha256 of the CA certificate's DER: what join tokens carry, so joiners can pin the CA. */
export function caDigest(certPem: string): string {
  return createHash('sha256').update(Buffer.from(new x509.X509Certificate(certPem).rawData)).digest('hex');
}

/** A node's key and certificate signing request (the key never leaves the node). */
export async function createNodeKeyAndCsr(): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=tsswarm-node', keys, signingAlgorithm: KEY_ALGORITHM,
  });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

export function identityOf(cert: x509.X509Certificate | string): NodeIdentity {
  const c = typeof cert === 'string' ? new x509.X509Certificate(cert) : cert;
  const field = (t: string) => c.subjectName.getField(t)[0] ?? '';
  const ou = field('OU');
  const role = (Object.entries(ROLE_OU).find(([, v]) => v === ou)?.[0]) as NodeRole | undefined;
  if (!role) throw new CertificateError(`certificate ${c.subject} names no tsswarm role`);
  return { nodeId: field('CN'), role, clusterId: field('O') };
}

/** True once 50–80% of the validity has passed (spread so that nodes do not all renew at once). */
export function needsRenewal(certPem: string, now: Date, jitter: number): boolean {
  const c = new x509.X509Certificate(certPem);
  const start = c.notBefore.getTime();
  const span = c.notAfter.getTime() - start;
  return now.getTime() >= start + span * (0.5 + 0.3 * Math.min(1, Math.max(0, jitter)));
}
