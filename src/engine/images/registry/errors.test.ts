import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from '../store.js';
import { makeTempDir, removeTempDir } from '../../../../testkit/images.js';
import { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { cutAfter, digestOf, fakeImage, randomLayer, startFakeRegistry, type FakeImage, type FakeRegistry, type Override } from '../../../../testkit/fake-registry.js';
import { nodePlatform } from './manifest.js';
import type { PullEvent } from './progress.js';
import { freePort } from '../../../../testkit/registry.js';

const LAYER_BYTES = 512 * 1024;

let shared: string;
let image: FakeImage;
let work: string;
let store: ImageStore;
let fake: FakeRegistry | undefined;
let client: RegistryClient;

beforeAll(() => {
  shared = makeTempDir();
  image = fakeImage([randomLayer(shared, 'one', LAYER_BYTES), randomLayer(shared, 'two', LAYER_BYTES)]);
});
afterAll(() => removeTempDir(shared));
beforeEach(async () => {
  work = makeTempDir();
  store = await ImageStore.open(join(work, 'images'));
  client = new RegistryClient({ readTimeoutMs: 500, connectTimeoutMs: 1000 });
});
afterEach(async () => {
  client.close();
  await fake?.close();
  fake = undefined;
  removeTempDir(work);
});

async function serve(override?: Override, img: FakeImage = image): Promise<string> {
  fake = await startFakeRegistry(img, override);
  return `${fake.addr}/test/app:latest`;
}

async function pullError(ref: string, opts: { onProgress?: (e: PullEvent) => void; maxManifestBytes?: number } = {}): Promise<RegistryError> {
  const err = await store.pull(ref, { client, ...opts }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  expect((err as Error).message).not.toContain('\n');
  return err as RegistryError;
}

/** Nothing half-written: no image, nothing in tmp/, no layer directory, and every blob is what its name says. */
function expectCleanStore(): void {
  const root = join(work, 'images');
  expect(store.list()).toEqual([]);
  expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  for (const b of readdirSync(join(root, 'blobs/sha256'))) {
    expect(createHash('sha256').update(readFileSync(join(root, 'blobs/sha256', b))).digest('hex')).toBe(b);
  }
  const layers = readdirSync(join(root, 'layers'));
  expect(layers.every((l) => image.layers.some((x) => x.diffId === `sha256:${l}`))).toBe(true);
}

const blobPath = (i: number): string => `/v2/test/app/blobs/${image.layers[i]?.digest}`;

describe('a misbehaving registry', () => {
  test('a blob whose bytes do not match its digest fails the pull with a digest error, and the store keeps nothing of it', async () => {
    const ref = await serve((_req, res, path) => {
      if (path !== blobPath(1)) return false;
      const bad = Buffer.from(image.layers[1]?.data as Buffer);
      bad[bad.length - 100] = (bad[bad.length - 100] as number) ^ 0xff;
      res.writeHead(200, { 'content-length': bad.length }).end(bad);
      return true;
    });
    const err = await pullError(ref);
    expect(err.kind).toBe('digest');
    expect(err.message).toMatch(new RegExp(`^layer sha256:${image.layers[1]?.digest.slice(7, 19)}… of ${fake?.addr}/test/app: the downloaded bytes do not match the digest \\(got sha256:[0-9a-f]{12}…\\); the registry's copy is corrupt$`));
    expectCleanStore();
    expect(readdirSync(join(work, 'images/layers'))).not.toContain(image.layers[1]?.diffId.slice(7));
  });

  test('a download cut in the middle is resumed with a Range request from the first missing byte', async () => {
    let cut = false;
    const ref = await serve((req, res, path) => {
      if (path !== blobPath(0) || cut || req.headers.range) return false;
      cut = true;
      cutAfter(res, image.layers[0]?.data as Buffer, 200_000);
      return true;
    });
    const events: PullEvent[] = [];
    const result = await store.pull(ref, { client, onProgress: (e) => events.push(e) });
    expect(result.image.layers).toEqual(image.layers.map((l) => l.diffId));
    const resumed = fake?.requests.find((r) => r.startsWith(`GET ${blobPath(0)} range=`));
    expect(resumed).toMatch(/range=bytes=\d+-$/);
    expect(Number(/bytes=(\d+)-/.exec(resumed as string)?.[1])).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'layer' && e.status === 'Retrying' && e.message?.startsWith('attempt 2 of 3'))).toBe(true);
  });

  test('a registry that ignores Range is read again from the start, the bytes already seen skipped', async () => {
    let cut = false;
    const ref = await serve((_req, res, path) => {
      if (path !== blobPath(0)) return false;
      const data = image.layers[0]?.data as Buffer;
      if (!cut) {
        cut = true;
        cutAfter(res, data, 300_000);
      } else {
        res.writeHead(200, { 'content-length': data.length }).end(data); // the whole blob, Range or not
      }
      return true;
    });
    const result = await store.pull(ref, { client });
    expect(result.image.layers).toEqual(image.layers.map((l) => l.diffId));
  });

  test('a download cut every time fails after 3 attempts, saying how far it got, and leaves nothing half-written', async () => {
    const ref = await serve((_req, res, path) => {
      if (path !== blobPath(1)) return false;
      cutAfter(res, image.layers[1]?.data as Buffer, 100_000);
      return true;
    });
    const err = await pullError(ref);
    expect(err.kind).toBe('interrupted');
    expect(err.message).toMatch(/: download failed after 3 attempts, \d+ of \d+ bytes received: /);
    expect(fake?.requests.filter((r) => r.startsWith(`GET ${blobPath(1)}`))).toHaveLength(3);
    expectCleanStore();
  });

  test('a registry that accepts the connection and never answers fails within the read timeout', async () => {
    const ref = await serve((_req, _res, path) => path.includes('/manifests/')); // no answer at all
    const started = Date.now();
    const err = await pullError(ref);
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/stopped answering \(nothing for 0\.5s\)$/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a registry that goes silent in the middle of a blob fails in bounded time after its retries', async () => {
    const ref = await serve((_req, res, path) => {
      if (path !== blobPath(0)) return false;
      const data = image.layers[0]?.data as Buffer;
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 50_000)); // and then nothing
      return true;
    });
    const started = Date.now();
    const err = await pullError(ref);
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/download failed after 3 attempts, .* stopped answering/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expectCleanStore();
  });

  test('a registry that is down is "connection refused", at once', async () => {
    const port = await freePort();
    const err = await pullError(`127.0.0.1:${port}/test/app:1`);
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(new RegExp(`^cannot connect to registry 127\\.0\\.0\\.1:${port} \\(GET http://127\\.0\\.0\\.1:${port}/v2/\\): connection refused$`));
  });

  test('a manifest over the size limit is refused while it is read, whatever length it announced', async () => {
    const ref = await serve((_req, res, path) => {
      if (!path.includes('/manifests/')) return false;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }); // chunked: no length announced
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const more = (): void => {
        while (sent < 8 << 20 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
      return true;
    });
    const err = await pullError(ref);
    expect(err.kind).toBe('too-large');
    expect(err.message).toBe(`manifest of ${ref.replace(':latest', '')}:latest is over the limit of ${4 << 20} bytes`);
  });

  test('a manifest list with another platform only is refused, naming the platforms it has', async () => {
    const index = manifestList([{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 's390x' }].filter((p) => p.architecture !== nodePlatform().architecture));
    const ref = await serve();
    fake?.manifests.set('multi', { body: index, type: 'application/vnd.oci.image.index.v1+json' });
    const err = await pullError(ref.replace(':latest', ':multi'));
    expect(err.kind).toBe('platform');
    expect(err.message).toMatch(new RegExp(`: no matching manifest for linux/${nodePlatform().architecture} in the manifest list entries \\(it has linux/(arm64/v8|s390x)`));
    expect(fake?.requests.some((r) => r.includes('/blobs/'))).toBe(false);
  });

  test('a manifest list (docker) picks this node\'s platform among others', async () => {
    const here = nodePlatform();
    const list = manifestList([{ os: 'linux', architecture: 'mips64le' }, here, { os: 'windows', architecture: here.architecture }], 'application/vnd.docker.distribution.manifest.list.v2+json');
    const ref = await serve();
    fake?.manifests.set('multi', { body: list, type: 'application/vnd.docker.distribution.manifest.list.v2+json' });
    const result = await store.pull(ref.replace(':latest', ':multi'), { client });
    expect(result.digest).toBe(digestOf(list));
    expect(result.image.layers).toEqual(image.layers.map((l) => l.diffId));
  });

  test('foreign (non-distributable) layers are refused before any download', async () => {
    const foreign = fakeImage(image.layers, { layerMediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' });
    const ref = await serve(undefined, foreign);
    const err = await pullError(ref);
    expect(err.kind).toBe('unsupported');
    expect(err.message).toMatch(/is a foreign \(non-distributable\) layer \(application\/vnd\.docker\.image\.rootfs\.foreign\.diff\.tar\.gzip\), which tsswarm does not download/);
    expect(fake?.requests.some((r) => r.includes('/blobs/'))).toBe(false);
  });

  test('a schema 1 manifest is refused with what to do about it', async () => {
    const ref = await serve();
    fake?.manifests.set('old', { body: Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'test/app', tag: 'old', fsLayers: [] })), type: 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
    const err = await pullError(ref.replace(':latest', ':old'));
    expect(err.kind).toBe('unsupported');
    expect(err.message).toMatch(/Docker schema 1 manifests are not supported .*push the image again/);
  });

  test('an image for another architecture is refused', async () => {
    const other = fakeImage(image.layers, { architecture: nodePlatform().architecture === 'arm64' ? 'amd64' : 'arm64' });
    const ref = await serve(undefined, other);
    const err = await pullError(ref);
    expect(err.kind).toBe('platform');
    expect(err.message).toMatch(/the image is for linux\/(arm64|amd64), and this node is linux\//);
  });

  test('layers download 3 at a time', async () => {
    const five = fakeImage(Array.from({ length: 5 }, (_, i) => randomLayer(work, `l${i}`, 4096)));
    let active = 0;
    let peak = 0;
    const ref = await serve((_req, res, path) => {
      const layer = five.layers.find((l) => path.endsWith(l.digest));
      if (!layer) return false;
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => {
        active--;
        res.writeHead(200, { 'content-length': layer.data.length }).end(layer.data);
      }, 150);
      return true;
    }, five);
    await store.pull(ref, { client });
    expect(peak).toBe(3);
  });
});

/** An index whose entries all point at the test image's manifest, with the given platforms. */
function manifestList(platforms: { os: string; architecture: string; variant?: string }[], mediaType = 'application/vnd.oci.image.index.v1+json'): Buffer {
  const entryType = mediaType.includes('docker') ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
  return Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType,
    manifests: platforms.map((platform) => ({ mediaType: entryType, digest: image.manifestDigest, size: image.manifest.length, platform })),
  }));
}
