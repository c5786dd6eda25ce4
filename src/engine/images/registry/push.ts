/**
 * `docker push` from the image store: every blob the manifest names is checked with HEAD first, mounted
 * from another repository of the same registry when the store knows one that may hold it, and
 * uploaded only when neither worked (monolithic PUT by default, chunked PATCHes on request), all
 * streamed from the blob files; then the manifest is PUT under the tag.
 *
 * The manifest pushed is the one the image came with when the store kept it (a pull or an OCI
 * layout), byte for byte, so the digest matches what the image had at its source. Images that never
 * had one (an imported rootfs, a docker-save archive) get an OCI manifest built from their blobs.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import type { BlobStore } from '../blob-store.js';
import { readHead, sniffCompression } from '../compression.js';
import { sha256Of, shortDigest, type Digest } from '../digest.js';
import { ImageError } from '../errors.js';
import { ManifestSchema, MediaType, type Manifest } from '../image-config.js';
import type { RegistryClient, RepositoryClient } from './client.js';
import { forEachConcurrently } from '../concurrency.js';
import { RegistryError } from './errors.js';
import { ConfigType, LayerType } from './manifest.js';
import { layerId, throttled, type PushEvent, type PushLayerStatus } from './progress.js';
import { parseRemoteReference } from './remote-reference.js';

export const DEFAULT_PUSH_CONCURRENCY = 3;
const MAX_MANIFEST_BYTES = 4 << 20;

export interface PushOptions {
  client: RegistryClient;
  onProgress?: (e: PushEvent) => void;
  concurrency?: number;
  /** Upload blobs in PATCH chunks of this many bytes instead of one PUT. */
  chunkSize?: number;
}

/** What a push borrows from the store: the image's content, and other repositories to mount from. */
export interface PushSource {
  image: { id: Digest; layers: Digest[]; blobs: Digest[] };
  blobs: BlobStore;
  /** Other repositories ("shop/base") of the target registry that images in the store came from or went to. */
  mountCandidates: string[];
}

export interface PushResult {
  /** "registry:5000/shop/web:1.4" */
  reference: string;
  digest: Digest;
  /** Bytes of the manifest, as docker prints ("size: 527"). */
  size: number;
}

export interface ManifestToPush {
  bytes: Buffer;
  mediaType: string;
  manifest: Manifest;
}

export async function pushImage(source: PushSource, input: string, opts: PushOptions): Promise<PushResult> {
  const ref = parseRemoteReference(input);
  if (ref.digest !== undefined || ref.tag === undefined) throw new ImageError(`cannot push ${input}: push takes a tag, not a digest`);
  const emit = opts.onProgress ?? (() => {});
  const toPush = await manifestFor(source);
  const mountFrom = source.mountCandidates.filter((r) => r !== ref.repository);
  const repo = await opts.client.repository(ref.registry, ref.repository, ['pull', 'push'], mountFrom);

  const descriptors = [...toPush.manifest.layers, toPush.manifest.config];
  const unique = [...new Map(descriptors.map((d) => [d.digest, { digest: d.digest as Digest, size: d.size }])).values()];
  for (const d of unique) emit({ type: 'layer', id: layerId(d.digest), digest: d.digest, status: 'Preparing' });
  await forEachConcurrently(unique, opts.concurrency ?? DEFAULT_PUSH_CONCURRENCY, (d) => pushBlob(source, repo, d, mountFrom, opts, emit));

  const tag = ref.tag;
  const announced = await repo.putManifest(tag, toPush.bytes, toPush.mediaType, `manifest ${ref.full}`);
  const digest = sha256Of(toPush.bytes);
  if (announced !== undefined && announced !== digest) {
    throw new RegistryError('digest', `${ref.full}: the registry stored the manifest as ${shortDigest(announced)}, but its bytes hash to ${shortDigest(digest)}`);
  }
  emit({ type: 'done', reference: ref.full, digest, size: toPush.bytes.length });
  return { reference: ref.full, digest, size: toPush.bytes.length };
}

async function pushBlob(
  source: PushSource, repo: RepositoryClient, d: { digest: Digest; size: number }, mountFrom: string[], opts: PushOptions,
  emit: (e: PushEvent) => void,
): Promise<void> {
  const say = (status: PushLayerStatus, extra: { current?: number; total?: number; message?: string } = {}): void =>
    emit({ type: 'layer', id: layerId(d.digest), digest: d.digest, status, ...extra });
  if (await repo.hasBlob(d.digest)) return say('Layer already exists');
  if (!(await source.blobs.has(d.digest))) {
    throw new ImageError(`blob ${shortDigest(d.digest)} is not in the local store (its layer came with another image); pull the image again to push it`);
  }
  let location: URL | undefined;
  for (const from of mountFrom) {
    const r = await repo.startUpload(d.digest, from);
    if (r === 'mounted') return say('Mounted', { message: `Mounted from ${from}` });
    location = r; // the registry could not mount, and started an ordinary upload instead
    break;
  }
  location ??= (await repo.startUpload(d.digest)) as URL;
  const path = source.blobs.path(d.digest);
  const progress = throttled((current) => say('Pushing', { current, total: d.size }), d.size);
  if (opts.chunkSize !== undefined && opts.chunkSize > 0) {
    for (let start = 0; start < d.size; start += opts.chunkSize) {
      const size = Math.min(opts.chunkSize, d.size - start);
      location = await repo.patchBlob(location, d.digest, start, size, createReadStream(path, { start, end: start + size - 1 }));
      progress(start + size);
    }
    await repo.finishUpload(location, d.digest);
  } else {
    // Counted as it is read by the request, not with a 'data' listener, which would start the flow
    // (and lose bytes) before the request is ready to take them.
    let sent = 0;
    const counter = new Transform({ transform: (chunk: Buffer, _enc, cb) => { progress((sent += chunk.length)); cb(null, chunk); } });
    const file = createReadStream(path, { highWaterMark: 1 << 20 });
    file.on('error', (err) => counter.destroy(err));
    await repo.putBlob(location, d.digest, d.size, file.pipe(counter));
  }
  say('Pushed');
}

/** The image's own manifest when the store kept it, else one built from its blobs. */
export async function manifestFor(source: PushSource): Promise<ManifestToPush> {
  return (await keptManifest(source)) ?? (await builtManifest(source));
}

async function keptManifest(source: PushSource): Promise<ManifestToPush | undefined> {
  for (const b of source.image.blobs) {
    if (b === source.image.id) continue;
    const size = (await stat(source.blobs.path(b)).catch(() => undefined))?.size;
    if (size === undefined || size > MAX_MANIFEST_BYTES) continue;
    if ((await readHead(source.blobs.path(b), 1)).toString() !== '{') continue;
    const bytes = await source.blobs.read(b);
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      continue;
    }
    const r = ManifestSchema.safeParse(json);
    if (!r.success || r.data.config.digest !== source.image.id) continue;
    return { bytes, mediaType: r.data.mediaType ?? MediaType.ociManifest, manifest: r.data };
  }
  return undefined;
}

/**
 * An OCI manifest for an image that has none: each diff_id's blob is the uncompressed layer itself
 * (docker-save archives) or, for a one-layer image, the one other blob it holds (an imported rootfs,
 * possibly compressed).
 */
async function builtManifest(source: PushSource): Promise<ManifestToPush> {
  const { image, blobs } = source;
  const config = { mediaType: ConfigType.oci, digest: image.id, size: (await stat(blobs.path(image.id))).size };
  const others = image.blobs.filter((b) => b !== image.id && !image.layers.includes(b));
  const layers = [];
  for (const diffId of image.layers) {
    const blob = image.blobs.includes(diffId) ? diffId : image.layers.length === 1 && others.length === 1 ? (others[0] as Digest) : undefined;
    if (blob === undefined || !(await blobs.has(blob))) {
      throw new ImageError(`image ${shortDigest(image.id)}: the store does not have the blob of layer ${shortDigest(diffId)}, so it cannot be pushed`);
    }
    const compression = sniffCompression(await readHead(blobs.path(blob), 8));
    const mediaType = compression === 'gzip' ? LayerType.ociGzip : compression === 'zstd' ? LayerType.ociZstd : LayerType.ociTar;
    layers.push({ mediaType, digest: blob, size: (await stat(blobs.path(blob))).size });
  }
  const manifest = { schemaVersion: 2 as const, mediaType: MediaType.ociManifest, config, layers };
  return { bytes: Buffer.from(JSON.stringify(manifest)), mediaType: MediaType.ociManifest, manifest };
}

