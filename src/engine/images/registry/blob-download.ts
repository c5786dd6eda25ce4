/**
 * A blob's bytes as one stream, whatever happens to the connection: when a download is cut (reset,
 * closed early, silent past the read timeout) it is resumed with a Range request from the first
 * missing byte, or, where the registry ignores Range, restarted with the bytes already seen skipped.
 * The consumer (hashing, the file, the unpacker) never sees the seam. Bounded attempts, then one line
 * that says how far it got.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { shortDigest, type Digest } from '../digest.js';
import type { RepositoryClient } from './client.js';
import { RegistryError } from './errors.js';
import type { HttpResponse } from './transport.js';

export const DEFAULT_ATTEMPTS = 3;
const BACKOFF_MS = 200;

export interface DownloadOptions {
  /** Tries in all (the first one included). */
  attempts?: number;
  onRetry?: (attempt: number, received: number, reason: string) => void;
}

export async function* blobChunks(repo: RepositoryClient, blob: { digest: Digest; size: number }, opts: DownloadOptions = {}): AsyncGenerator<Buffer> {
  const attempts = opts.attempts ?? DEFAULT_ATTEMPTS;
  const what = `blob ${shortDigest(blob.digest)} of ${repo.name}`;
  let received = 0;
  for (let attempt = 1; ; attempt++) {
    let res: HttpResponse | undefined;
    try {
      res = await repo.getBlob(blob.digest, received);
      let skip = received > 0 ? skipFor(res, received, what) : 0;
      for await (const piece of res.body) {
        let chunk = piece as Buffer;
        if (skip > 0) {
          if (chunk.length <= skip) { skip -= chunk.length; continue; }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        received += chunk.length;
        if (received > blob.size) {
          throw new RegistryError('digest', `${what}: the registry sent more than the ${blob.size} bytes its descriptor says`);
        }
        yield chunk;
      }
      if (received === blob.size) return;
      throw new RegistryError('interrupted', `connection closed after ${received} of ${blob.size} bytes`);
    } catch (err) {
      res?.body.destroy();
      if (!retryable(err)) throw err;
      const why = reasonOf(err);
      if (attempt >= attempts) {
        const kind = err instanceof RegistryError && err.kind === 'timeout' ? 'timeout' : 'interrupted';
        throw new RegistryError(kind, `${what}: download failed after ${attempts} attempts, ${received} of ${blob.size} bytes received: ${why}`, { cause: err });
      }
      opts.onRetry?.(attempt, received, why);
      await sleep(BACKOFF_MS * attempt);
    }
  }
}

/** How many bytes of a resumed response to drop: none if the Range was honoured, all we have if not. */
function skipFor(res: HttpResponse, received: number, what: string): number {
  if (res.status !== 206) return received;
  const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
  if (!range || Number(range[1]) !== received) {
    throw new RegistryError('protocol', `${what}: asked to resume at byte ${received}, the registry answered ${String(res.headers['content-range'] ?? 'no Content-Range')}`);
  }
  return 0;
}

function retryable(err: unknown): boolean {
  if (err instanceof RegistryError) return err.kind === 'interrupted' || err.kind === 'timeout' || err.kind === 'unreachable';
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error).message === 'aborted';
}

function reasonOf(err: unknown): string {
  if (err instanceof RegistryError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e.message === 'aborted' || e.code === 'ECONNRESET') return 'connection reset';
  return e.message ?? String(err);
}
