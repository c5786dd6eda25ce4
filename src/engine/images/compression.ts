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

/**
 * The uncompressed content of a file as a stream. gzip goes through zlib in-process; zstd (which
 * Node 20's zlib lacks) through one `zstd -dc` process per layer, when the program is installed.
 */
export async function openDecompressed(path: string, what: string): Promise<{ stream: Readable; compression: Compression; done: () => Promise<void> }> {
  const head = await readHead(path, 8);
  const compression = head.length >= 4 ? sniffCompression(head) : 'none';
  switch (compression) {
    case 'none':
      return { stream: createReadStream(path, { highWaterMark: CHUNK }), compression, done: async () => {} };
    case 'gzip': {
      const file = createReadStream(path, { highWaterMark: CHUNK });
      // Concatenated gzip members are legal (pigz, some registries); zlib's gunzip handles them.
      const gunzip = createGunzip({ chunkSize: CHUNK });
      file.on('error', (err) => gunzip.destroy(err));
      return { stream: file.pipe(gunzip), compression, done: async () => {} };
    }
    case 'zstd': {
      if (!haveZstd()) throw new ImageError(`${what}: zstd-compressed, and the zstd program is not installed (apt-get install zstd)`);
      const child = spawn('zstd', ['-dcq', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 4096) stderr += d; });
      const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
      child.on('error', () => {});
      return {
        stream: child.stdout,
        compression,
        done: async () => {
          const code = await exited;
          if (code !== 0) throw new ImageError(`${what}: zstd failed: ${stderr.trim().split('\n')[0] ?? `exit ${code}`}`);
        },
      };
    }
    default:
      throw new ImageError(`${what}: ${compression}-compressed layers are not supported (only tar, gzip and zstd)`);
  }
}
