import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import { goArch } from './image-config.js';
import { ImageStore } from './index.js';
import { busyboxRootfs, makeTempDir, removeTempDir, sh, tarDir, writeOciLayout } from '../../../testkit/images.js';

let shared: string;
let busyboxTar: string;
let work: string;
beforeAll(() => {
  shared = makeTempDir();
  busyboxTar = busyboxRootfs(join(shared, 'busybox.tar'));
});
afterAll(() => removeTempDir(shared));
beforeEach(() => { work = makeTempDir(); });
afterEach(() => removeTempDir(work));

const hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

test('a legacy docker-save archive whose second image links its layer to the first', async () => {
  const dir = join(work, 'save');
  const layerHex = hex(readFileSync(busyboxTar));
  const manifest: unknown[] = [];
  for (const [i, name] of ['web', 'worker'].entries()) {
    const layerDir = `${String(i).repeat(64)}`;
    mkdirSync(join(dir, layerDir), { recursive: true });
    if (i === 0) writeFileSync(join(dir, layerDir, 'layer.tar'), readFileSync(busyboxTar));
    else symlinkSync(`../${'0'.repeat(64)}/layer.tar`, join(dir, layerDir, 'layer.tar'));
    const config = JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2026-01-02T03:04:05Z',
      config: { Cmd: ['/bin/sh', '-c', `echo ${name}`], Healthcheck: { Test: ['CMD', 'true'], Interval: 5_000_000_000, Retries: 3 } },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
    });
    writeFileSync(join(dir, `${hex(config)}.json`), config);
    manifest.push({ Config: `${hex(config)}.json`, RepoTags: [`demo/${name}:1`], Layers: [`${layerDir}/layer.tar`] });
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const archive = join(work, 'save.tar.gz');
  tarDir(dir, archive, true);

  const store = await ImageStore.open(join(work, 'images'));
  const images = await store.load(archive);
  expect(images.map((i) => i.refs)).toEqual([['demo/web:1'], ['demo/worker:1']]);
  expect(images[0]!.layers).toEqual(images[1]!.layers);
  expect(images[1]!.config.cmd).toEqual(['/bin/sh', '-c', 'echo worker']);
  expect(images[1]!.config.healthcheck).toEqual({ test: ['CMD', 'true'], interval: 5_000_000_000, retries: 3 });
  expect(images[0]!.created).toBe('2026-01-02T03:04:05Z');
});

test('a multi-platform index picks this machine\'s manifest; a gzipped OCI tar loads', async () => {
  const layout = join(work, 'multi');
  const mine = writeOciLayout(join(work, 'mine'), [{ file: busyboxTar }], { config: { Env: ['ARCH=mine'] } });
  // Reuse the blobs of a single-platform layout and wrap its manifest in an index with two platforms.
  sh('cp', ['-a', join(work, 'mine'), layout]);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
  const ours = index.manifests[0]!;
  const other = goArch() === 'arm64' ? 'amd64' : 'arm64';
  const nested = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'9'.repeat(64)}`, size: 1, platform: { os: 'linux', architecture: other } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: ours.digest, size: ours.size, platform: { os: 'linux', architecture: goArch() } },
    ],
  });
  writeFileSync(join(layout, 'blobs/sha256', hex(nested)), nested);
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex(nested)}`, size: nested.length, annotations: { 'org.opencontainers.image.ref.name': 'registry.local:5000/multi:2.0' } }],
  }));
  const archive = join(work, 'multi.tar.gz');
  tarDir(layout, archive, true);

  const store = await ImageStore.open(join(work, 'images'));
  const [img] = await store.load(archive);
  expect(img!.id).toBe(mine.configDigest);
  expect(img!.refs).toEqual(['registry.local:5000/multi:2.0']);
  expect(img!.config.env).toEqual(['ARCH=mine']);
});

test('loading a tag that another image has moves the tag, the old image stays untagged', async () => {
  const store = await ImageStore.open(join(work, 'images'));
  const first = await store.importRootfs(busyboxTar, 'app:1');
  const top = join(work, 'top');
  mkdirSync(top);
  writeFileSync(join(top, 'v2'), '2');
  writeOciLayout(join(work, 'app'), [{ file: busyboxTar }, { file: tarDir(top, join(work, 'top.tar')) }], { tag: '1' });
  const [second] = await store.load(join(work, 'app'));
  expect(second!.refs).toEqual(['app:1']);
  expect(store.resolve(first.id)?.refs).toEqual([]);
  expect(store.resolve('app:1')?.id).toBe(second!.id);
});

test('a docker 25+ save archive (OCI layout plus manifest.json) uses its RepoTags', async () => {
  const dir = join(work, 'save25');
  const { configDigest, layerDigests } = writeOciLayout(dir, [{ file: busyboxTar }], { tag: 'ignored' });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{
    Config: `blobs/sha256/${configDigest.slice(7)}`,
    RepoTags: ['docker.io/library/busybox:stable'],
    Layers: layerDigests.map((d) => `blobs/sha256/${d.slice(7)}`),
  }]));
  const archive = join(work, 'save25.tar');
  tarDir(dir, archive);
  const store = await ImageStore.open(join(work, 'images'));
  const [img] = await store.load(archive);
  expect(img!.id).toBe(configDigest);
  expect(img!.refs).toEqual(['busybox:stable']);
});

test('concurrent imports, loads and removes are serialised and all land', async () => {
  const store = await ImageStore.open(join(work, 'images'));
  const layout = join(work, 'layout');
  writeOciLayout(layout, [{ file: busyboxTar }], { tag: 'v1' });
  const results = await Promise.allSettled([
    store.importRootfs(busyboxTar, 'a'),
    store.load(layout, { name: 'b' }),
    store.importRootfs(busyboxTar, 'c'),
    store.remove('a'),
    store.importRootfs(join(work, 'missing.tar'), 'd'),
  ]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
  expect(store.list().flatMap((i) => i.refs).sort()).toEqual(['b:v1', 'c:latest']);
  const reopened = await ImageStore.open(join(work, 'images'));
  expect(reopened.list()).toEqual(store.list());
});
