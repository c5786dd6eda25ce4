/**
 * Content-addressed blobs under <root>/blobs/sha256/<hex>: manifests, configs and layer blobs as they
 * came. A blob is written to a temp file while it is hashed and only renamed into place once its
 * digest is known and checked, so a blob at its final path is always complete and correct.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestMismatch, HashingStream, hexOf, isDigest, sha256Of, type Digest } from './digest.js';
import { ImageError, reason } from './errors.js';

export class BlobStore {
  readonly dir: string;

  constructor(root: string, private readonly tmp: () => string) {
    this.dir = join(root, 'blobs', 'sha256');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  path(d: Digest): string {
    return join(this.dir, hexOf(d));
  }

  async has(d: Digest): Promise<boolean> {
    return stat(this.path(d)).then((s) => s.isFile(), () => false);
  }

  /**
   * Streams `from` into the store, hashing it on the way. With `expected` the content must match it;
   * without, the blob is stored under whatever it hashes to. Returns the digest and size.
   */
  async ingestStream(from: Readable, what: string, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const tmpFile = this.tmp();
    const hasher = new HashingStream();
    try {
      await pipeline(from, hasher, createWriteStream(tmpFile, { flags: 'wx', mode: 0o644 }));
      const digest = hasher.digest();
      if (expected !== undefined && digest !== expected) throw digestMismatch(what, digest);
      await this.adopt(tmpFile, digest);
      return { digest, size: hasher.bytes };
    } catch (err) {
      await rm(tmpFile, { force: true });
      if (err instanceof ImageError) throw err;
      throw new ImageError(`${what}: ${reason(err)}`, { cause: err });
    }
  }

  /** Copies a file into the store (skipped when the expected blob is already there: it was verified). */
  async ingestFile(path: string, what: string, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    if (expected !== undefined && (await this.has(expected))) {
      return { digest: expected, size: (await stat(this.path(expected))).size };
    }
    return this.ingestStream(createReadStream(path, { highWaterMark: 1 << 20 }), what, expected);
  }

  /** Moves an already hashed temp file into place (or drops it when the blob exists). */
  async adopt(tmpFile: string, digest: Digest): Promise<void> {
    if (await this.has(digest)) {
      await rm(tmpFile, { force: true });
      return;
    }
    await rename(tmpFile, this.path(digest));
  }

  /** Stores a small document (config, manifest) we hold in memory. */
  async put(data: string | Buffer): Promise<Digest> {
    const digest = sha256Of(data);
    if (!(await this.has(digest))) {
      const tmpFile = this.tmp();
      await writeFile(tmpFile, data, { mode: 0o644 });
      await this.adopt(tmpFile, digest);
    }
    return digest;
  }

  async read(d: Digest): Promise<Buffer> {
    return readFile(this.path(d));
  }

  async list(): Promise<Digest[]> {
    const names = await readdir(this.dir);
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }

  /** Entries that are not blobs (stray files) are listed too, so a sweep can clear them. */
  async listStray(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => !isDigest(`sha256:${n}`)).map((n) => join(this.dir, n));
  }

  async remove(d: Digest): Promise<void> {
    await rm(this.path(d), { force: true });
  }
}
