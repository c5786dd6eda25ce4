/**
 * Digests ("sha256:<64 hex>") and stream hashing. Blobs are hashed while they stream (never buffered
 * whole, layers can be gigabytes) and checked against the digest that the manifest promised.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ImageError } from './errors.js';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Validates a digest taken from untrusted JSON; `what` says where it came from for the error. */
export function parseDigest(s: unknown, what: string): Digest {
  if (!isDigest(s)) {
    const shown = typeof s === 'string' ? JSON.stringify(s.slice(0, 80)) : String(s);
    throw new ImageError(`${what}: invalid digest ${shown} (want sha256:<64 hex digits>)`);
  }
  return s;
}

export function hexOf(d: Digest): string {
  return d.slice('sha256:'.length);
}

/** "sha256:0123456789ab…", for messages. */
export function shortDigest(d: string): string {
  return d.length > 'sha256:'.length + 12 ? `${d.slice(0, 'sha256:'.length + 12)}…` : d;
}

export function sha256Of(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private result: Digest | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  /** The digest of everything that went through; only valid once the stream has ended. */
  digest(): Digest {
    this.result ??= `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }
}

/** The error for a blob or layer whose content does not match its digest; `what` names it ("layer sha256:…"). */
export function digestMismatch(what: string, got: Digest): ImageError {
  return new ImageError(`${what}: digest mismatch (got ${shortDigest(got)})`);
}
