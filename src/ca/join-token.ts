/**
 * Join tokens, as SwarmKit's SWMTKN: `SWMTKN-1-<CA digest, base36>-<secret>`. The digest lets a
 * joining node pin the cluster's CA before it trusts any manager; the secret (one per role) is what
 * the managers check before they sign a certificate.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'SWMTKN-1';
const DIGEST_LEN = 50; // base36 of a 256-bit digest
const SECRET_LEN = 25;

export class JoinTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JoinTokenError';
  }
}

function toBase36(hex: string, width: number): string {
  return BigInt(`0x${hex}`).toString(36).padStart(width, '0');
}

export function newSecret(): string {
  return toBase36(randomBytes(16).toString('hex'), SECRET_LEN).slice(-SECRET_LEN);
}

export function formatJoinToken(caDigestHex: string, secret: string): string {
  return `${PREFIX}-${toBase36(caDigestHex, DIGEST_LEN)}-${secret}`;
}

export interface ParsedJoinToken {
  caDigestHex: string;
  secret: string;
}

export function parseJoinToken(token: string): ParsedJoinToken {
  const parts = token.trim().split('-');
  if (parts.length !== 4 || `${parts[0]}-${parts[1]}` !== PREFIX) {
    throw new JoinTokenError('invalid join token: expected SWMTKN-1-<digest>-<secret>');
  }
  const [, , digest = '', secret = ''] = parts;
  if (!/^[0-9a-z]+$/.test(digest) || digest.length !== DIGEST_LEN) throw new JoinTokenError('invalid join token: malformed CA digest');
  if (!/^[0-9a-z]+$/.test(secret) || secret.length !== SECRET_LEN) throw new JoinTokenError('invalid join token: malformed secret');
  let value = 0n;
  for (const ch of digest) value = value * 36n + BigInt(parseInt(ch, 36));
  return { caDigestHex: value.toString(16).padStart(64, '0'), secret };
}

/** Constant-time comparison of a presented secret with the current one. */
export function secretMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
