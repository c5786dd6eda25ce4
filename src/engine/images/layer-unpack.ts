/**
 * Unpacks one layer blob into a directory that overlayfs can use as a lower layer.
 *
 * The bytes flow once: blob file → decompress → sha256 (the diff_id) → our tar reader, which validates
 * every member name and turns OCI whiteouts into overlayfs ones → GNU tar, which does the extraction.
 * GNU tar rather than node-tar because it writes device nodes, xattrs (trusted.* included) and
 * ownership natively, which Node cannot (no mknod, no setxattr), and because it is faster (see the
 * speed test). The whiteouts are applied by GNU tar too: `.wh.NAME` is forwarded as a character device
 * 0:0 named NAME, and for `.wh..wh..opq` the directory is re-emitted at the end of the stream with the
 * PAX record SCHILY.xattr.trusted.overlay.opaque=y. So one process per layer, none per file.
 */
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestMismatch, HashingStream, type Digest } from './digest.js';
import { decompress, openDecompressed, type Compression } from './compression.js';
import { ImageError, reason } from './errors.js';
import { BLOCK, encodeEntry, END_OF_ARCHIVE, parseTar, TarType, type TarEvent } from './tar-format.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

export interface UnpackedLayer {
  diffId: Digest;
  /** Bytes of regular-file content in the layer. */
  size: number;
  compression: Compression;
}

/**
 * Normalises a member name to a path relative to the layer root ("" for the root itself), refusing
 * names that would land outside it.
 */
export function memberPath(name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  // umoci names the layer's root "/"; any other absolute name is refused rather than reinterpreted.
  if (name.startsWith('/') && parts.length > 0) throw new ImageError(`member ${JSON.stringify(name)} has an absolute path`);
  if (parts.includes('..')) throw new ImageError(`member ${JSON.stringify(name)} escapes the layer with ".."`);
  return parts.join('/');
}

const ALLOWED_TYPES = new Set<string>([
  TarType.file, TarType.contiguous, TarType.hardlink, TarType.symlink,
  TarType.charDevice, TarType.blockDevice, TarType.directory, TarType.fifo,
]);

const ZEROS = Buffer.alloc(BLOCK);

interface DirMeta { mode: number; uid: number; gid: number; mtime: number }

/**
 * Rewrites a layer's tar stream for overlayfs and checks it is safe to extract: no absolute names, no
 * "..", no member below a symlink of the same layer (extracting `a -> /etc` then `a/passwd` would
 * write outside the layer), hardlinks only to members inside.
 */
export async function* overlayTarStream(events: AsyncIterable<TarEvent>, stats: { size: number }): AsyncGenerator<Buffer> {
  const symlinks = new Set<string>();
  const dirs = new Map<string, DirMeta>();
  const opaque = new Set<string>();
  let forwarding = true;

  const checkAncestors = (path: string, member: string): void => {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      if (symlinks.has(path.slice(0, i))) {
        throw new ImageError(`member ${JSON.stringify(member)} lies below symlink ${JSON.stringify(path.slice(0, i))}`);
      }
    }
  };

  for await (const ev of events) {
    if (ev.kind === 'data') {
      if (forwarding) yield ev.chunk;
      continue;
    }
    if (ev.kind === 'entryEnd') {
      if (forwarding && ev.padding > 0) yield ZEROS.subarray(0, ev.padding);
      continue;
    }
    if (ev.kind === 'end') {
      for (const dir of opaque) {
        const meta = dirs.get(dir) ?? { mode: 0o755, uid: 0, gid: 0, mtime: Math.floor(Date.now() / 1000) };
        yield encodeEntry({
          path: dir === '' ? './' : `${dir}/`,
          type: TarType.directory,
          ...meta,
          pax: { [`SCHILY.xattr.${OPAQUE_XATTR}`]: 'y' },
        });
      }
      yield END_OF_ARCHIVE;
      continue;
    }
    const e = ev.entry;
    const path = memberPath(e.path);
    checkAncestors(path, e.path);
    const slash = path.lastIndexOf('/');
    const dir = slash === -1 ? '' : path.slice(0, slash);
    const base = path.slice(slash + 1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      forwarding = false;
      if (base === OPAQUE_MARKER) {
        opaque.add(dir);
      } else if (!base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`) && base.length > WHITEOUT_PREFIX.length) {
        // Other ".wh..wh." names are aufs bookkeeping (hardlink dirs, ...) and mean nothing to overlayfs.
        const target = (dir === '' ? '' : `${dir}/`) + base.slice(WHITEOUT_PREFIX.length);
        yield encodeEntry({ path: target, type: TarType.charDevice, mode: 0, uid: e.uid, gid: e.gid, mtime: e.mtime, devmajor: 0, devminor: 0 });
      }
      continue;
    }
    if (!ALLOWED_TYPES.has(e.type)) {
      throw new ImageError(`member ${JSON.stringify(e.path)} has unsupported tar entry type '${e.type}'`);
    }
    switch (e.type) {
      case TarType.symlink:
        symlinks.add(path);
        break;
      case TarType.hardlink: {
        if (e.linkpath === '') throw new ImageError(`hardlink ${JSON.stringify(e.path)} has no target`);
        const target = memberPath(e.linkpath);
        checkAncestors(target, e.linkpath);
        // A hardlink to a symlink is a symlink too.
        if (symlinks.has(target)) symlinks.add(path);
        break;
      }
      case TarType.directory:
        dirs.set(path, { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime });
        break;
      case TarType.file:
      case TarType.contiguous:
        stats.size += e.size;
        break;
    }
    forwarding = true;
    for (const b of ev.raw) yield b;
  }
}

const BATCH = 128 * 1024;

/**
 * Gathers small pieces (headers, padding, the content of small files) into writes of about BATCH
 * bytes: a layer of many small files would otherwise cost three pipe writes per file, which measured
 * several times slower than the hashing and parsing together. Large pieces pass through uncopied.
 */
export async function* coalesce(pieces: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let batch: Buffer[] = [];
  let size = 0;
  for await (const piece of pieces) {
    if (piece.length >= BATCH / 2) {
      if (size > 0) yield Buffer.concat(batch, size);
      batch = [];
      size = 0;
      yield piece;
      continue;
    }
    batch.push(piece);
    size += piece.length;
    if (size >= BATCH) {
      yield Buffer.concat(batch, size);
      batch = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(batch, size);
}

/** The line of GNU tar's stderr that says what went wrong, skipping its warnings and summary. */
function tarComplaint(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.replace(/^tar: /, '').trim()).filter((l) => l !== '');
  const noise = /^(Removing leading|Exiting with failure status|Error is not recoverable)/;
  return lines.find((l) => !noise.test(l)) ?? lines[0];
}

export const GNU_TAR_EXTRACT = [
  '--extract', '--file=-',
  '--numeric-owner', '--same-owner', '--preserve-permissions',
  '--xattrs', '--xattrs-include=*',
  '--warning=no-timestamp', '--warning=no-unknown-keyword',
];

export interface UnpackOptions {
  /** The uncompressed content must hash to this. */
  diffId?: Digest;
  /**
   * The blob's digest, when it was already verified on its way into the blob store: an uncompressed
   * blob then needs no second hashing (its diff_id is that digest), which saves a third of the time.
   */
  verifiedBlobDigest?: Digest;
}

/** A layer blob: a file, or a stream (a download) whose compression the caller sniffed. */
export type LayerInput = string | { stream: Readable; compression: Compression };

/**
 * Unpacks the layer blob at `blob` into the existing empty directory `dest`. On failure `dest` may
 * hold a partial tree: the caller unpacks into a temp dir and removes it.
 */
export async function unpackLayer(blob: LayerInput, dest: string, what: string, opts: UnpackOptions = {}): Promise<UnpackedLayer> {
  const { stream, compression, done } = typeof blob === 'string' ? await openDecompressed(blob, what) : decompress(blob.stream, blob.compression, what);
  const known = compression === 'none' ? opts.verifiedBlobDigest : undefined;
  if (known !== undefined && opts.diffId !== undefined && known !== opts.diffId) {
    stream.destroy();
    throw digestMismatch(what, known);
  }
  const hasher = known === undefined ? new HashingStream() : new PassThrough();
  const stats = { size: 0 };
  const tar = spawn('tar', [...GNU_TAR_EXTRACT, `--directory=${dest}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  let tarStderr = '';
  tar.stderr.setEncoding('utf8').on('data', (d: string) => { if (tarStderr.length < 8192) tarStderr += d; });
  const tarExit = new Promise<number>((resolve) => {
    tar.on('error', (err) => { tarStderr ||= reason(err); resolve(127); });
    tar.on('close', (code) => resolve(code ?? 1));
  });

  let streamError: unknown;
  try {
    const rewritten = Readable.from(coalesce(overlayTarStream(parseTar(stream.pipe(hasher)), stats)), { objectMode: false });
    stream.on('error', (err) => hasher.destroy(err));
    await pipeline(rewritten, tar.stdin);
    await done();
  } catch (err) {
    streamError = err;
    tar.stdin.destroy();
    stream.destroy();
  }
  const code = await tarExit;
  // Our own verdicts (unsafe member, corrupt compression, digest) are clearer than tar's complaint
  // about the stream we cut short; tar's own error matters when it died first (EPIPE on our side).
  const epipe = (streamError as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
  if (streamError !== undefined && !epipe) {
    throw new ImageError(`${what}: ${reason(streamError)}`, { cause: streamError });
  }
  if (code !== 0 || epipe) throw new ImageError(`${what}: extracting failed: ${tarComplaint(tarStderr) ?? `tar exit status ${code}`}`);
  const diffId = known ?? (hasher as HashingStream).digest();
  if (opts.diffId !== undefined && diffId !== opts.diffId) throw digestMismatch(what, diffId);
  return { diffId, size: stats.size, compression };
}
