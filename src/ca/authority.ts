/**
 * The cluster's root CA, kept by the managers: it signs every node's certificate, whose subject names
 * the node (CN = node id), its role (OU = swarm-manager | swarm-worker) and the cluster (O).
 * Mutual TLS between nodes then proves who is calling and with which role.
 */
import { randomBytes } from 'node:crypto';
import { x509, generateKeyPair, importPrivateKeyPem, KEY_ALGORITHM, privateKeyPem } from './x509.js';
import { CertificateError, identityOf, ROLE_OU, type NodeIdentity, type NodeRole } from './node-certs.js';

export { CertificateError, type NodeIdentity, type NodeRole };


export const ROOT_VALIDITY_DAYS = 20 * 365;
export const NODE_VALIDITY_DAYS = 90;
export const DEFAULT_CERT_EXPIRY_MS = NODE_VALIDITY_DAYS * 86_400_000;
const DAY_MS = 86_400_000;

export interface RootCA {
  certPem: string;
  keyPem: string;
}


function serial(): string {
  // Positive, 16 random bytes: unique without coordination between managers.
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

export async function createRootCA(clusterId: string, now = new Date()): Promise<RootCA> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=tsswarm-root-ca, O=${clusterId}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + ROOT_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: KEY_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * Signs a node certificate. The subject comes from the CA's decision (node id, role), never from
 * the CSR, so a node cannot ask for a role it was not given.
 */
export async function signNodeCertificate(ca: RootCA, csrPem: string, who: NodeIdentity, now = new Date(), validityMs = DEFAULT_CERT_EXPIRY_MS): Promise<string> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new CertificateError(`malformed certificate signing request: ${(err as Error).message}`);
  }
  if (!(await csr.verify())) throw new CertificateError('certificate signing request: signature does not verify');
  const caCert = new x509.X509Certificate(ca.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${who.nodeId}, OU=${ROLE_OU[who.role]}, O=${who.clusterId}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + validityMs),
    signingAlgorithm: KEY_ALGORITHM,
    publicKey: csr.publicKey,
    signingKey: await importPrivateKeyPem(ca.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      // gRPC checks the server name against the SAN: every node answers to its id and to "tsswarm-node".
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: who.nodeId }, { type: 'dns', value: 'tsswarm-node' }]),
    ],
  });
  return cert.toString('pem');
}

/** Reads node id, role and cluster from a certificate signed by `caPem`; throws when it is not. */
export async function verifyNodeCertificate(certPem: string | Buffer, caPem: string, now = new Date()): Promise<NodeIdentity> {
  const cert = new x509.X509Certificate(typeof certPem === 'string' ? certPem : new Uint8Array(certPem));
  const ca = new x509.X509Certificate(caPem);
  if (!(await cert.verify({ publicKey: ca.publicKey, date: now }))) {
    throw new CertificateError(`certificate ${cert.subject} is not signed by this cluster's CA or has expired`);
  }
  return identityOf(cert);
}
