/**
 * Layer compression, told by magic bytes rather than media type: docker-save archives say nothing, and
 * registries have been known to label gzip blobs as plain tar.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ImageError } from './errors.js';

export type Compression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

export async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export function sniffCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528 && head.length >= 4) return 'zstd';
  if (head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

let zstdAvailable: boolean | undefined;
function haveZstd(): boolean {
  zstdAvailable ??= spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
  return zstdAvailable;
}

const CHUNK = 256 * 1024; // larger reads than the 64 KiB default: fewer round trips through the pipeline

export interface Decompressed {
  stream: Readable;
  compression: Compression;
  /** Resolves once the decompressor has exited cleanly (zstd runs as a process). */
  done: () => Promise<void>;
}

/**
 * The uncompressed content of a file as a stream. gzip goes through zlib in-process; zstd (which
 * Node 20's zlib lacks) through one `zstd -dc` process per layer, when the program is installed.
 */
export async function openDecompressed(path: string, what: string): Promise<Decompressed> {
  const head = await readHead(path, 8);
  const compression = head.length >= 4 ? sniffCompression(head) : 'none';
  // zstd reads the file itself: one copy fewer than piping it through Node.
  if (compression === 'zstd') return zstdProcess(['-dcq', '--', path], undefined, what);
  if (compression !== 'none' && compression !== 'gzip') throw unsupported(compression, what);
  return decompress(createReadStream(path, { highWaterMark: CHUNK }), compression, what);
}

/**
 * Decompresses a stream whose compression is already known (sniffed from its first bytes by the
 * caller): a layer arriving from a registry is unpacked while it downloads.
 */
export function decompress(input: Readable, compression: Compression, what: string): Decompressed {
  switch (compression) {
    case 'none':
      return { stream: input, compression, done: async () => {} };
    case 'gzip': {
      // Concatenated gzip members are legal (pigz, some registries); zlib's gunzip handles them.
      const gunzip = createGunzip({ chunkSize: CHUNK });
      input.on('error', (err) => gunzip.destroy(err));
      return { stream: input.pipe(gunzip), compression, done: async () => {} };
    }
    case 'zstd':
      return zstdProcess(['-dcq'], input, what);
    default:
      throw unsupported(compression, what);
  }
}

function unsupported(compression: Compression, what: string): ImageError {
  return new ImageError(`${what}: ${compression}-compressed layers are not supported (only tar, gzip and zstd)`);
}

function zstdProcess(args: string[], input: Readable | undefined, what: string): Decompressed {
  if (!haveZstd()) throw new ImageError(`${what}: zstd-compressed, and the zstd program is not installed (apt-get install zstd)`);
  const child = input
    ? spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('zstd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 4096) stderr += d; });
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  child.on('error', () => {});
  if (input && child.stdin !== null) {
    const stdin = child.stdin;
    stdin.on('error', () => {}); // zstd exiting early shows in its exit status
    // A failed input must end zstd too (closing its stdin), or it would wait for more forever.
    input.on('error', (err) => { stdin.destroy(); child.stdout.destroy(err); });
    input.pipe(stdin);
  }
  return {
    stream: child.stdout,
    compression: 'zstd',
    done: async () => {
      const code = await exited;
      if (code !== 0) throw new ImageError(`${what}: zstd failed: ${stderr.trim().split('\n')[0] ?? `exit ${code}`}`);
    },
  };
}
