/**
 * Where `load` reads an image from: a directory (OCI layout as umoci writes it) or a tar archive (OCI
 * layout tarred, or `docker save`, optionally gzipped). Both answer the same questions: read this small
 * JSON file, put this member into the blob store verified.
 *
 * An archive is read in one pass: every regular member is written to a staging dir under the store's
 * tmp while it is hashed, so blobs are afterwards renamed into the store instead of copied again.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import { posix, join, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { BlobStore } from './blob-store.js';
import { digestMismatch, HashingStream, sha256Of, type Digest } from './digest.js';
import { readHead, sniffCompression } from './compression.js';
import { ImageError, reason } from './errors.js';
import { memberPath } from './layer-unpack.js';
import { looksLikeTar, parseTar, TarType } from './tar-format.js';

const MAX_DOCUMENT = 8 << 20; // manifests and configs are kilobytes; refuse to read a "config" of gigabytes

export interface ImageSource {
  /** The user's path, for messages. */
  readonly label: string;
  exists(rel: string): Promise<boolean>;
  /** A small document (index, manifest, config), as bytes so that its digest can be checked. */
  read(rel: string): Promise<Buffer>;
  /** Puts member `rel` into the blob store; with `expected` it must hash to that. */
  ingest(rel: string, blobs: BlobStore, what: string, expected?: Digest): Promise<Digest>;
  close(): Promise<void>;
}

export class DirectorySource implements ImageSource {
  private constructor(readonly label: string, private readonly root: string) {}

  static async open(dir: string): Promise<DirectorySource> {
    return new DirectorySource(dir, await realpath(dir));
  }

  /** The real path of a member, refusing symlinks that lead out of the directory. */
  private async resolve(rel: string): Promise<string | undefined> {
    let real: string;
    try {
      real = await realpath(join(this.root, memberPath(rel)));
    } catch {
      return undefined;
    }
    if (real !== this.root && !real.startsWith(this.root + sep)) {
      throw new ImageError(`${this.label}: ${rel} points outside the image directory`);
    }
    return real;
  }

  async exists(rel: string): Promise<boolean> {
    const p = await this.resolve(rel);
    return p !== undefined && (await stat(p)).isFile();
  }

  async read(rel: string): Promise<Buffer> {
    const p = await this.resolve(rel);
    if (p === undefined) throw new ImageError(`${this.label}: ${rel} is missing`);
    if ((await stat(p)).size > MAX_DOCUMENT) throw new ImageError(`${this.label}: ${rel} is too large for a JSON document`);
    return readFile(p);
  }

  async ingest(rel: string, blobs: BlobStore, what: string, expected?: Digest): Promise<Digest> {
    const p = await this.resolve(rel);
    if (p === undefined) throw new ImageError(`${what}: ${rel} is missing from ${this.label}`);
    return (await blobs.ingestFile(p, what, expected)).digest;
  }

  async close(): Promise<void> {}
}

interface StagedMember { file: string; digest: Digest; size: number }

export class ArchiveSource implements ImageSource {
  private readonly members = new Map<string, StagedMember>();
  /** Symlinks and hardlinks between members (docker save links duplicate layers). */
  private readonly links = new Map<string, string>();

  private constructor(readonly label: string, private readonly staging: string) {}

  /** Reads the whole archive into `staging` (which must not exist yet). */
  static async open(file: string, staging: string): Promise<ArchiveSource> {
    const src = new ArchiveSource(file, staging);
    await mkdir(staging, { recursive: true });
    try {
      await src.stage(file);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      if (err instanceof ImageError) throw new ImageError(`${file}: ${err.message}`);
      throw new ImageError(`${file}: ${reason(err)}`, { cause: err });
    }
    return src;
  }

  private async stage(file: string): Promise<void> {
    const head = await readHead(file, 512);
    const gzip = sniffCompression(head) === 'gzip';
    if (!gzip && !looksLikeTar(head)) throw new ImageError('not a tar archive or image directory');
    let input: Readable = createReadStream(file, { highWaterMark: 1 << 20 });
    if (gzip) {
      const raw = input;
      input = raw.pipe(createGunzip({ chunkSize: 1 << 18 }));
      raw.on('error', (err) => input.destroy(err));
    }
    let current: { fh: Awaited<ReturnType<typeof open>>; hasher: HashingStream; name: string; file: string } | undefined;
    let n = 0;
    try {
      for await (const ev of parseTar(input)) {
        if (ev.kind === 'entry') {
          const e = ev.entry;
          const name = memberPath(e.path);
          if (e.type === TarType.file || e.type === TarType.contiguous) {
            const staged = join(this.staging, String(n++));
            current = { fh: await open(staged, 'wx', 0o644), hasher: new HashingStream(), name, file: staged };
            if (e.size === 0) continue;
          } else if (e.type === TarType.symlink) {
            this.links.set(name, posix.join(posix.dirname(name), e.linkpath));
          } else if (e.type === TarType.hardlink) {
            this.links.set(name, e.linkpath);
          }
        } else if (ev.kind === 'data' && current) {
          current.hasher.hash.update(ev.chunk);
          current.hasher.bytes += ev.chunk.length;
          await current.fh.write(ev.chunk);
        } else if (ev.kind === 'entryEnd' && current) {
          await current.fh.close();
          this.members.set(current.name, { file: current.file, digest: current.hasher.digest(), size: current.hasher.bytes });
          current = undefined;
        }
      }
    } finally {
      await current?.fh.close();
    }
  }

  private lookup(rel: string): StagedMember | undefined {
    let name: string;
    try {
      name = memberPath(rel);
    } catch {
      return undefined;
    }
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(name);
      if (m) return m;
      const target = this.links.get(name);
      if (target === undefined) return undefined;
      try {
        name = memberPath(target);
      } catch {
        return undefined; // a link out of the archive leads nowhere we read
      }
    }
    return undefined;
  }

  async exists(rel: string): Promise<boolean> {
    return this.lookup(rel) !== undefined;
  }

  async read(rel: string): Promise<Buffer> {
    const m = this.lookup(rel);
    if (!m) throw new ImageError(`${this.label}: ${rel} is missing`);
    if (m.size > MAX_DOCUMENT) throw new ImageError(`${this.label}: ${rel} is too large for a JSON document`);
    return readFile(m.file);
  }

  async ingest(rel: string, blobs: BlobStore, what: string, expected?: Digest): Promise<Digest> {
    const m = this.lookup(rel);
    if (!m) throw new ImageError(`${what}: ${rel} is missing from ${this.label}`);
    if (expected !== undefined && m.digest !== expected) throw digestMismatch(what, m.digest);
    if (await blobs.has(m.digest)) return m.digest;
    // A member may be referenced twice (a layer shared by two images in one archive): rename once.
    await blobs.adopt(m.file, m.digest);
    return m.digest;
  }

  async close(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
  }
}

/** Verifies a small document read from a source against the digest its descriptor promised. */
export function checkDocument(bytes: Buffer, what: string, expected: Digest): void {
  const got = sha256Of(bytes);
  if (got !== expected) throw digestMismatch(what, got);
}
