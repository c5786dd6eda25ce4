/**
 * A node's certificate renewal: checked often enough to renew at 50–80% of its validity (a random
 * point per node, so that a swarm's nodes do not all renew at once), through the manager the node
 * talks to, with a fresh key. A role change renews at once, through another manager, to get a
 * certificate for the new role.
 */
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serviceClient } from '../rpc/proto.js';
import { createNodeKeyAndCsr, needsRenewal } from './node-certs.js';
import { CHANNEL_OPTIONS, clientCredentials, type NodeCertificates, type NodeTls } from './tls-credentials.js';

export interface RenewalOptions {
  certs: NodeCertificates;
  /** The manager to renew through when none is named: the one the node's session is with. */
  currentManager: () => string;
  /** Keeps the new certificate and key on disk before they are used. */
  persist: (tls: NodeTls) => Promise<void>;
  logger: Logger;
}

const RENEW_DEADLINE_MS = 15_000;

export class CertificateRenewal {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Where in 50–80% of the validity this node renews. */
  private readonly jitter = Math.random();

  constructor(private readonly opts: RenewalOptions) {}

  /** Checks the certificate often enough to renew it at 50–80% of its validity. */
  start(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const cert = new X509Certificate(this.opts.certs.current().certPem);
    const span = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    const every = Math.min(600_000, Math.max(1000, span / 40));
    this.timer = setTimeout(() => {
      void this.renewIfDue().catch((err) => this.opts.logger.warn({ err: (err as Error).message }, 'certificate renewal failed; will retry'))
        .finally(() => this.start());
    }, every);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Renews when due (or `force`), through the first of `through` that answers (default: the current manager). */
  async renewIfDue(force = false, through: string[] = []): Promise<void> {
    const { certs } = this.opts;
    if (!force && !needsRenewal(certs.current().certPem, new Date(), this.jitter)) return;
    const candidates = through.length ? through : [this.opts.currentManager()];
    const { keyPem, csrPem } = await createNodeKeyAndCsr();
    let certPem: string | undefined;
    let lastError: unknown;
    for (const manager of candidates) {
      try {
        certPem = await issueThrough(manager, certs, csrPem);
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (certPem === undefined) throw lastError;
    const tls = { caPem: certs.current().caPem, certPem, keyPem };
    await this.opts.persist(tls);
    certs.update(tls);
    this.opts.logger.info({ validTo: new X509Certificate(certPem).validTo }, 'node certificate renewed');
  }
}

/** One renewal call: the node's current certificate proves who it is, so no token is sent. */
function issueThrough(manager: string, certs: NodeCertificates, csrPem: string): Promise<string> {
  const CA = serviceClient('control.proto', 'tsswarm.swarm.v1.CA');
  const client = new CA(manager, clientCredentials(certs), CHANNEL_OPTIONS) as grpc.Client & Record<string, Function>;
  return new Promise<string>((resolve, reject) => {
    client.IssueNodeCertificate!({ csr: Buffer.from(csrPem), token: '' }, { deadline: Date.now() + RENEW_DEADLINE_MS }, (err: grpc.ServiceError | null, res: { certificate: Buffer }) => {
      if (err) reject(new Error(`renewing the certificate through ${manager} failed: ${err.details || err.message}`));
      else resolve(res.certificate.toString());
    });
  }).finally(() => client.close());
}
