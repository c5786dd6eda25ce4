/**
 * A registry that misbehaves on purpose, for the error tests: a small Node HTTP server on loopback that
 * serves one image (manifests and blobs from memory) and lets a test take over any request to send
 * wrong bytes, cut the connection, go silent or send a manifest of megabytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './images.js';

export const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface FakeImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  layers: { digest: string; data: Buffer; diffId: string }[];
}

/** A tar (by GNU tar, in `dir`) with one file of `size` random, incompressible bytes, as a gzip layer blob. */
export function randomLayer(dir: string, name: string, size: number): { data: Buffer; diffId: string } {
  const src = join(dir, `src-${name}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, name), randomBytes(size));
  const tarFile = join(dir, `${name}.tar`);
  sh('tar', ['-C', src, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarFile, name]);
  const tar = readFileSync(tarFile);
  return { data: gzipSync(tar, { level: 1 }), diffId: digestOf(tar) };
}

export function fakeImage(layers: { data: Buffer; diffId: string }[], opts: { layerMediaType?: string; architecture?: string } = {}): FakeImage {
  const config = Buffer.from(JSON.stringify({
    architecture: opts.architecture ?? goArchOfNode(), os: 'linux', config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  }));
  const withDigests = layers.map((l) => ({ ...l, digest: digestOf(l.data) }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: withDigests.map((l) => ({ mediaType: opts.layerMediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.data.length })),
  }));
  return { manifest, manifestDigest: digestOf(manifest), config, layers: withDigests };
}

function goArchOfNode(): string {
  return ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** Returns true when it answered the request itself. */
export type Override = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

export interface FakeRegistry {
  addr: string;
  /** "GET /v2/x/blobs/sha256:… range=bytes=10-" per request, in order. */
  requests: string[];
  /** Extra manifests by tag or digest. */
  manifests: Map<string, { body: Buffer; type: string }>;
  close(): Promise<void>;
}

export async function startFakeRegistry(image: FakeImage, override: Override = () => false): Promise<FakeRegistry> {
  const requests: string[] = [];
  const manifests = new Map<string, { body: Buffer; type: string }>([
    ['latest', { body: image.manifest, type: 'application/vnd.oci.image.manifest.v1+json' }],
    [image.manifestDigest, { body: image.manifest, type: 'application/vnd.oci.image.manifest.v1+json' }],
  ]);
  const blobs = new Map<string, Buffer>([[digestOf(image.config), image.config], ...image.layers.map((l) => [l.digest, l.data] as [string, Buffer])]);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}${req.headers.range ? ` range=${req.headers.range}` : ''}`);
    if (override(req, res, path)) return;
    if (path === '/v2/') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    if (m?.[2] === 'manifests') {
      const doc = manifests.get(m[3] as string);
      if (!doc) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      return void res.writeHead(200, { 'content-type': doc.type, 'content-length': doc.body.length }).end(doc.body);
    }
    if (m?.[2] === 'blobs') {
      const data = blobs.get(m[3] as string);
      if (!data) return void res.writeHead(404).end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        return void res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` }).end(data.subarray(start));
      }
      return void res.writeHead(200, { 'content-length': data.length }).end(data);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    addr: `127.0.0.1:${port}`, requests, manifests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Sends the first `n` bytes of `data` as a response of full length, then cuts the connection. */
export function cutAfter(res: ServerResponse, data: Buffer, n: number): void {
  res.writeHead(200, { 'content-length': data.length });
  res.write(data.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 20));
}
