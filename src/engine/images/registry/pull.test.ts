import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from '../store.js';
import { busyboxRootfs, makeTempDir, removeTempDir, sh, writeOciLayout } from '../../../../testkit/images.js';
import { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import type { PullEvent } from './progress.js';
import { skopeoCopy, skopeoDigest, startRegistry, umociImage, type RunningRegistry } from '../../../../testkit/registry.js';

let shared: string;
let registry: RunningRegistry;
let client: RegistryClient;
let work: string;
let store: ImageStore;

beforeAll(async () => {
  shared = makeTempDir();
  const rootfs = join(shared, 'rootfs');
  mkdirSync(rootfs);
  sh('tar', ['-C', rootfs, '-xpf', busyboxRootfs(join(shared, 'busybox.tar'))]);
  const layout = umociImage(join(shared, 'layout'), rootfs, shared);
  mkdirSync(join(shared, 'registry'));
  registry = await startRegistry(join(shared, 'registry'));
  skopeoCopy(`oci:${layout}:latest`, `docker://${registry.addr}/test/busybox:1`);
  // The same two layers compressed with zstd, in a layout written by hand (skopeo 1.9 does not
  // recompress for a registry), copied by skopeo as they are.
  const zstdLayers = [join(shared, 'busybox.tar'), join(shared, 'top-layer.tar')].map((f) => {
    sh('zstd', ['-q', '-f', f, '-o', `${f}.zst`]);
    return { file: `${f}.zst` };
  });
  writeOciLayout(join(shared, 'zstd-layout'), zstdLayers, { config: { Env: ['PATH=/bin'] } });
  skopeoCopy(`oci:${join(shared, 'zstd-layout')}:latest`, `docker://${registry.addr}/test/zstd:1`);
});
afterAll(async () => {
  await registry?.stop();
  removeTempDir(shared);
});
beforeEach(async () => {
  work = makeTempDir();
  store = await ImageStore.open(join(work, 'images'));
  client = new RegistryClient();
});
afterEach(() => {
  client.close();
  removeTempDir(work);
});

function statusesByLayer(events: PullEvent[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of events) {
    if (e.type !== 'layer') continue;
    const list = out.get(e.id) ?? [];
    if (list[list.length - 1] !== e.status) list.push(e.status);
    out.set(e.id, list);
  }
  return out;
}

describe('pull from a real registry', () => {
  test('an image pushed by skopeo from an umoci layout is pulled with its rootfs, config and digest', async () => {
    const ref = `${registry.addr}/test/busybox:1`;
    const result = await store.pull(ref, { client });
    expect(result.reference).toBe(ref);
    expect(result.digest).toBe(skopeoDigest(ref));
    const img = store.resolve(ref);
    expect(img?.id).toBe(result.image.id);
    expect(img?.refs).toEqual([ref]);
    expect(img?.layers).toHaveLength(2);
    expect(img?.config.env).toContain('GREETING=hi');
    expect(img?.config.cmd).toEqual(['/bin/sh']);
    expect(img?.config.workingDir).toBe('/tmp');
    const dirs = store.lowerDirs(result.image);
    const find = (rel: string): string | undefined => dirs.map((d) => join(d, rel)).find((p) => existsSync(p));
    expect(readFileSync(find('etc/greeting') as string, 'utf8')).toBe('hello from the registry\n');
    expect(sh(find('bin/busybox') as string, ['echo', 'runs']).trim()).toBe('runs');
    // The top layer's whiteout became an overlayfs one (a 0:0 char device) hiding the busybox layer's file.
    const marker = lstatSync(join(dirs[0] as string, 'etc/image-marker'));
    expect(marker.isCharacterDevice()).toBe(true);
    expect(marker.rdev).toBe(0);
    expect(readdirSync(join(work, 'images/tmp'))).toEqual([]);
  });

  test('progress goes through docker\'s statuses per layer, then the digest and status', async () => {
    const events: PullEvent[] = [];
    const ref = `${registry.addr}/test/busybox:1`;
    const result = await store.pull(ref, { client, onProgress: (e) => events.push(e) });
    expect(events[0]).toMatchObject({ type: 'resolved', reference: ref, digest: result.digest, layers: 2 });
    const byLayer = statusesByLayer(events);
    expect(byLayer.size).toBe(2);
    for (const statuses of byLayer.values()) {
      expect(statuses[0]).toBe('Pulling fs layer');
      expect(statuses.slice(-5)).toEqual(['Downloading', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete']);
    }
    const downloading = events.filter((e) => e.type === 'layer' && e.status === 'Downloading');
    expect(downloading.every((e) => e.type === 'layer' && e.total !== undefined && (e.current ?? 0) <= e.total)).toBe(true);
    expect(events.at(-1)).toEqual({ type: 'done', reference: ref, digest: result.digest, status: `Downloaded newer image for ${ref}` });
  });

  test('a second pull finds every layer in the store and says the image is up to date', async () => {
    const ref = `${registry.addr}/test/busybox:1`;
    await store.pull(ref, { client });
    const events: PullEvent[] = [];
    const again = await store.pull(ref, { client, onProgress: (e) => events.push(e) });
    expect([...statusesByLayer(events).values()]).toEqual([['Already exists'], ['Already exists']]);
    expect(again.status).toBe(`Image is up to date for ${ref}`);
  });

  test('a pull by digest tags nothing and the image resolves by name@digest', async () => {
    const digest = skopeoDigest(`${registry.addr}/test/busybox:1`);
    const byDigest = `${registry.addr}/test/busybox@${digest}`;
    const result = await store.pull(byDigest, { client });
    expect(result.digest).toBe(digest);
    expect(result.image.refs).toEqual([]);
    expect(store.resolve(byDigest)?.id).toBe(result.image.id);
    expect(store.resolve(`${registry.addr}/test/busybox:1@${digest}`)?.id).toBe(result.image.id);
  });

  test('zstd layers are pulled and unpacked', async () => {
    const ref = `${registry.addr}/test/zstd:1`;
    const raw = JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as { layers: { mediaType: string }[] };
    expect(raw.layers.map((l) => l.mediaType)).toContain('application/vnd.oci.image.layer.v1.tar+zstd');
    const result = await store.pull(ref, { client });
    const plain = await store.pull(`${registry.addr}/test/busybox:1`, { client });
    // The same uncompressed layers (umoci's busybox layer differs from GNU tar's only in the first).
    expect(result.image.layers[1]).toEqual(plain.image.layers[1]);
    const dirs = store.lowerDirs(result.image);
    expect(readFileSync(join(dirs[0] as string, 'etc/greeting'), 'utf8')).toBe('hello from the registry\n');
    expect(lstatSync(join(dirs[1] as string, 'bin/busybox')).isFile()).toBe(true);
  });

  test('an unknown tag and an unknown repository are "No such image" errors', async () => {
    const tag = await store.pull(`${registry.addr}/test/busybox:nope`, { client }).catch((e: unknown) => e);
    expect(tag).toBeInstanceOf(RegistryError);
    expect((tag as RegistryError).kind).toBe('not-found');
    expect((tag as Error).message).toBe(`No such image: ${registry.addr}/test/busybox:nope (manifest unknown)`);
    const repo = await store.pull(`${registry.addr}/no/such:1`, { client }).catch((e: unknown) => e);
    expect((repo as RegistryError).kind).toBe('not-found');
    expect((repo as Error).message).toMatch(new RegExp(`^No such image: ${registry.addr}/no/such:1 \\(`));
    expect(store.list()).toEqual([]);
  });
});
