import { describe, expect, it } from 'vitest';
import {
  createRootCA, signNodeCertificate, verifyNodeCertificate,
} from './authority.js';
import { caDigest, createNodeKeyAndCsr, needsRenewal } from './node-certs.js';
import { formatJoinToken, newSecret, parseJoinToken, secretMatches } from './join-token.js';

describe('cluster CA', () => {
  it('signs node certificates whose subject carries id, role and cluster', async () => {
    const ca = await createRootCA('cluster1');
    const { csrPem } = await createNodeKeyAndCsr();
    const cert = await signNodeCertificate(ca, csrPem, { nodeId: 'node-a', role: 'worker', clusterId: 'cluster1' });
    expect(await verifyNodeCertificate(cert, ca.certPem)).toEqual({ nodeId: 'node-a', role: 'worker', clusterId: 'cluster1' });
  });

  it('refuses a certificate from another CA', async () => {
    const [ours, theirs] = await Promise.all([createRootCA('c1'), createRootCA('c2')]);
    const { csrPem } = await createNodeKeyAndCsr();
    const cert = await signNodeCertificate(theirs, csrPem, { nodeId: 'mallory', role: 'manager', clusterId: 'c2' });
    await expect(verifyNodeCertificate(cert, ours.certPem)).rejects.toThrow(/not signed by this cluster's CA/);
  });

  it('refuses a malformed CSR with a clear error', async () => {
    const ca = await createRootCA('c1');
    await expect(signNodeCertificate(ca, 'not a csr', { nodeId: 'n', role: 'worker', clusterId: 'c1' })).rejects.toThrow(/malformed certificate signing request/);
  });

  it('asks for renewal past half of the validity', async () => {
    const ca = await createRootCA('c1');
    const issued = new Date('2026-01-01T00:00:00Z');
    const cert = await signNodeCertificate(ca, (await createNodeKeyAndCsr()).csrPem, { nodeId: 'n', role: 'worker', clusterId: 'c1' }, issued);
    expect(needsRenewal(cert, new Date('2026-01-10T00:00:00Z'), 0)).toBe(false);
    expect(needsRenewal(cert, new Date('2026-02-20T00:00:00Z'), 0)).toBe(true);
    expect(needsRenewal(cert, new Date('2026-02-20T00:00:00Z'), 1)).toBe(false);
  });
});

describe('join tokens', () => {
  it('round-trip the CA digest and secret', async () => {
    const ca = await createRootCA('c1');
    const digest = caDigest(ca.certPem);
    const secret = newSecret();
    const token = formatJoinToken(digest, secret);
    expect(token).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(parseJoinToken(token)).toEqual({ caDigestHex: digest, secret });
    expect(secretMatches(secret, secret)).toBe(true);
    expect(secretMatches(newSecret(), secret)).toBe(false);
  });
  it.each(['', 'SWMTKN-2-abc-def', 'SWMTKN-1-short-secret', `SWMTKN-1-${'A'.repeat(50)}-${'a'.repeat(25)}`])('refuses %j', (t) => {
    expect(() => parseJoinToken(t)).toThrow(/invalid join token/);
  });
});
