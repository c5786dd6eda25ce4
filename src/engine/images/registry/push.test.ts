import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from '../store.js';
import { busyboxRootfs, makeTempDir, removeTempDir, sh } from '../../../../testkit/images.js';
import { RegistryClient } from './client.js';
import type { PushEvent } from './progress.js';
import { skopeoCopy, skopeoDigest, startRegistry, umociImage, type RunningRegistry } from '../../../../testkit/registry.js';

let shared: string;
let busyboxTar: string;
let registry: RunningRegistry;
let client: RegistryClient;
let work: string;
let store: ImageStore;

beforeAll(async () => {
  shared = makeTempDir();
  busyboxTar = busyboxRootfs(join(shared, 'busybox.tar'));
  const rootfs = join(shared, 'rootfs');
  mkdirSync(rootfs);
  sh('tar', ['-C', rootfs, '-xpf', busyboxTar]);
  const layout = umociImage(join(shared, 'layout'), rootfs, shared);
  mkdirSync(join(shared, 'registry'));
  registry = await startRegistry(join(shared, 'registry'));
  skopeoCopy(`oci:${layout}:latest`, `docker://${registry.addr}/source/busybox:1`);
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

/** What skopeo makes of a pushed image: its manifest digest and the layer and config digests. */
function pulledBack(ref: string): { digest: string; layers: string[]; config: string } {
  const dir = join(work, `back-${Math.random().toString(36).slice(2)}`);
  // As they are: skopeo would otherwise gzip uncompressed layers on the way into the layout.
  skopeoCopy(`docker://${ref}`, `oci:${dir}:x`, ['--dest-oci-accept-uncompressed-layers']);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]?.digest as string;
  const manifest = JSON.parse(readFileSync(join(dir, 'blobs/sha256', digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  return { digest, layers: manifest.layers.map((l) => l.digest), config: manifest.config.digest };
}

function statuses(events: PushEvent[]): string[] {
  return events.filter((e) => e.type === 'layer' && e.status !== 'Preparing' && e.status !== 'Pushing').map((e) => (e.type === 'layer' ? e.status : ''));
}

describe('push to a real registry', () => {
  test('an imported rootfs pushed by tsswarm is pulled back by skopeo with the digests tsswarm printed', async () => {
    const ref = `${registry.addr}/pushed/busybox:1`;
    const img = await store.importRootfs(busyboxTar, ref, { config: { cmd: ['/bin/sh'] } });
    const events: PushEvent[] = [];
    const result = await store.push(ref, { client, onProgress: (e) => events.push(e) });
    expect(result.reference).toBe(ref);
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(events.at(-1)).toEqual({ type: 'done', reference: ref, digest: result.digest, size: result.size });
    expect(statuses(events)).toEqual(['Pushed', 'Pushed']);
    const back = pulledBack(ref);
    expect(back.digest).toBe(result.digest);
    expect(skopeoDigest(ref)).toBe(result.digest);
    expect(back.config).toBe(img.id);
  });

  test('a pulled image pushed to another repository mounts its blobs and keeps its manifest digest', async () => {
    const source = `${registry.addr}/source/busybox:1`;
    const pulled = await store.pull(source, { client });
    const target = `${registry.addr}/mounted/busybox:copy`;
    await store.importRootfs(busyboxTar, 'unrelated'); // another image in the store changes nothing
    const events: PushEvent[] = [];
    const tagged = await tagLocally(source, target);
    expect(tagged).toBe(pulled.image.id);
    const result = await store.push(target, { client, onProgress: (e) => events.push(e) });
    expect(result.digest).toBe(pulled.digest);
    expect(statuses(events)).toEqual(['Mounted', 'Mounted', 'Mounted']);
    expect(events.filter((e) => e.type === 'layer' && e.status === 'Mounted').map((e) => e.type === 'layer' && e.message)).toContain('Mounted from source/busybox');
    expect(pulledBack(target).digest).toBe(pulled.digest);
  });

  test('a second push finds every blob with HEAD and uploads nothing', async () => {
    const ref = `${registry.addr}/again/busybox:1`;
    await store.importRootfs(busyboxTar, ref);
    const first = await store.push(ref, { client });
    const events: PushEvent[] = [];
    const second = await store.push(ref, { client, onProgress: (e) => events.push(e) });
    expect(second.digest).toBe(first.digest);
    expect(statuses(events)).toEqual(['Layer already exists', 'Layer already exists']);
  });

  test('a chunked upload (PATCH in 64 KiB pieces) gives the same blobs as a monolithic one', async () => {
    const ref = `${registry.addr}/chunked/busybox:1`;
    const img = await store.importRootfs(busyboxTar, ref);
    const result = await store.push(ref, { client, chunkSize: 64 * 1024 });
    const back = pulledBack(ref);
    expect(back.digest).toBe(result.digest);
    expect(back.config).toBe(img.id);
    // The layer blob (the uncompressed rootfs) came through whole: its digest is the layer's diff_id.
    expect(back.layers).toEqual(img.layers);
  });

  test('pushing a tag that does not exist locally is refused in docker\'s words', async () => {
    await expect(store.push(`${registry.addr}/none/x:1`, { client })).rejects.toThrow(`An image does not exist locally with the tag: ${registry.addr}/none/x:1`);
  });
});

/** Gives the image of `from` the tag `to` (the store has no tag command yet): load it through an OCI layout. */
async function tagLocally(from: string, to: string): Promise<string> {
  const dir = join(work, 'retag');
  skopeoCopy(`docker://${from}`, `oci:${dir}:${to.slice(to.lastIndexOf(':') + 1)}`);
  const [img] = await store.load(dir, { name: to.slice(0, to.lastIndexOf(':')) });
  return img?.id as string;
}
