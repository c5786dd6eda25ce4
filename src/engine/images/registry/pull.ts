/**
 * `docker pull` for the image store: resolve the reference to this node's manifest, fetch the config,
 * then fetch the layers the store lacks, 3 at a time (dockerd's default). Each layer's bytes flow once:
 * from the socket into the sha256 of the blob, into a temp file (the blob kept for push and save),
 * and into the unpacker (decompress, diff_id, GNU tar) at the same time, so download, digest and
 * unpack overlap instead of running one after the other. Nothing is put in place before it is
 * verified: blob and layer go through the store's temp dir and are renamed in only when their
 * digests match.
 *
 * The result is handed back to the store, which commits the image (see ImageStore.pull).
 */
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { BlobStore } from '../blob-store.js';
import { sniffCompression, type Compression } from '../compression.js';
import { sha256Of, shortDigest, type Digest } from '../digest.js';
import { ImageError, reason } from '../errors.js';
import { ImageConfigDocSchema, parseJson, type ImageConfigDoc, type Manifest } from '../image-config.js';
import type { LayerStore } from '../layer-store.js';
import type { UnpackedLayer } from '../layer-unpack.js';
import { blobChunks, DEFAULT_ATTEMPTS } from './blob-download.js';
import type { RegistryClient, RepositoryClient } from './client.js';
import { forEachConcurrently } from '../concurrency.js';
import { RegistryError } from './errors.js';
import { checkPullable, DEFAULT_MAX_MANIFEST_BYTES, nodePlatform, parseManifestDocument, selectPlatform } from './manifest.js';
import { layerId, throttled, type PullEvent, type PullLayerStatus } from './progress.js';
import { manifestRef, parseRemoteReference, type RemoteReference } from './remote-reference.js';

export const DEFAULT_PULL_CONCURRENCY = 3;
const MAX_CONFIG_BYTES = 8 << 20;

export interface PullOptions {
  client: RegistryClient;
  onProgress?: (e: PullEvent) => void;
  /** Layers downloaded at once. */
  concurrency?: number;
  /** Tries per layer download, the first included. */
  attempts?: number;
  maxManifestBytes?: number;
}

/**
 * What a pull borrows from the store: where verified content goes, and what it already has. The pull
 * runs outside the store's lock, so whatever it relies on or puts in place is pinned against sweeps.
 */
export interface PullTarget {
  blobs: BlobStore;
  layers: LayerStore;
  tmp(): string;
  /**
   * Pins these blobs and layers for the rest of the pull and says which the store has whole (layers
   * with their unpacked size); atomic with respect to sweeps, so what it reports stays there.
   */
  reserve(want: { blobs: Digest[]; layers: Digest[] }): Promise<{ blobs: Set<Digest>; layers: Map<Digest, number> }>;
}

export interface PulledLayer {
  diffId: Digest;
  blob: Digest;
  /** Unpacked bytes of file content. */
  size: number;
}

export interface PulledImage {
  ref: RemoteReference;
  /** What the reference resolved to (an index's digest for a multi-platform image), as docker prints it. */
  digest: Digest;
  /** The platform's image manifest. */
  manifestDigest: Digest;
  /** The documents to keep with the image: the manifest, and the index when there was one. */
  documents: Buffer[];
  config: { bytes: Buffer; digest: Digest; doc: ImageConfigDoc };
  layers: PulledLayer[];
  /** Whether any layer had to be fetched or unpacked. */
  fetched: boolean;
}

export async function pullImage(target: PullTarget, input: string, opts: PullOptions): Promise<PulledImage> {
  const ref = parseRemoteReference(input);
  const emit = opts.onProgress ?? (() => {});
  const repo = await opts.client.repository(ref.registry, ref.repository, ['pull']);
  const resolved = await resolveManifest(repo, ref, opts.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES);
  const { manifest } = resolved;
  const config = await fetchConfig(target, repo, manifest, ref);
  emit({ type: 'resolved', reference: ref.full, digest: resolved.digest, layers: manifest.layers.length });

  const diffIds = config.doc.rootfs.diff_ids as Digest[];
  const plan = new Map<Digest, Digest>(); // diff_id → blob, each distinct layer once
  manifest.layers.forEach((l, i) => plan.set(diffIds[i] as Digest, l.digest as Digest));
  const sizes = new Map<Digest, number>();
  const todo: LayerToFetch[] = [];
  const have = await target.reserve({ blobs: [...plan.values()], layers: [...plan.keys()] });
  for (const [diffId, blob] of plan) {
    const known = have.layers.get(diffId);
    if (known !== undefined) {
      sizes.set(diffId, known);
      emit({ type: 'layer', id: layerId(blob), digest: blob, status: 'Already exists' });
      continue;
    }
    const desc = manifest.layers.find((l) => l.digest === blob);
    todo.push({ diffId, blob, size: desc?.size ?? 0, blobInStore: have.blobs.has(blob) });
    emit({ type: 'layer', id: layerId(blob), digest: blob, status: 'Pulling fs layer' });
  }
  for (const t of todo.slice(opts.concurrency ?? DEFAULT_PULL_CONCURRENCY)) emit({ type: 'layer', id: layerId(t.blob), digest: t.blob, status: 'Waiting' });

  await forEachConcurrently(todo, opts.concurrency ?? DEFAULT_PULL_CONCURRENCY, async (t) => {
    const layerEmit = (status: PullLayerStatus, extra: { current?: number; total?: number; message?: string } = {}): void =>
      emit({ type: 'layer', id: layerId(t.blob), digest: t.blob, status, ...extra });
    const r = await fetchLayer(target, repo, t, opts.attempts ?? DEFAULT_ATTEMPTS, layerEmit);
    sizes.set(t.diffId, r.size);
    layerEmit('Pull complete');
  });

  return {
    ref,
    digest: resolved.digest,
    manifestDigest: resolved.manifestDigest,
    documents: resolved.documents,
    config,
    layers: manifest.layers.map((l, i) => ({ diffId: diffIds[i] as Digest, blob: l.digest as Digest, size: sizes.get(diffIds[i] as Digest) ?? 0 })),
    fetched: todo.length > 0,
  };
}

interface ResolvedManifest {
  digest: Digest;
  manifestDigest: Digest;
  manifest: Manifest;
  documents: Buffer[];
}

/** The reference's manifest, through the index entry for this node when it names an index. */
/**
 * The digest a reference names in its registry now (the manifest list's, for a multi-platform
 * image, as docker pins it): what `service create` pins so that every replica runs the same bits.
 */
export async function resolveDigest(client: RegistryClient, input: string, maxBytes = DEFAULT_MAX_MANIFEST_BYTES): Promise<{ ref: RemoteReference; digest: Digest }> {
  const ref = parseRemoteReference(input);
  const repo = await client.repository(ref.registry, ref.repository, ['pull']);
  const top = await repo.getManifest(manifestRef(ref), maxBytes, ref.full);
  const digest = sha256Of(top.bytes);
  if (ref.digest !== undefined && digest !== ref.digest) {
    throw new RegistryError('digest', `${ref.full}: the registry's manifest has digest ${shortDigest(digest)}, not the one asked for`);
  }
  parseManifestDocument(top.bytes, top.contentType, ref.full);
  return { ref, digest };
}

async function resolveManifest(repo: RepositoryClient, ref: RemoteReference, maxBytes: number): Promise<ResolvedManifest> {
  const top = await repo.getManifest(manifestRef(ref), maxBytes, ref.full);
  const digest = sha256Of(top.bytes);
  if (ref.digest !== undefined && digest !== ref.digest) {
    throw new RegistryError('digest', `${ref.full}: the registry's manifest has digest ${shortDigest(digest)}, not the one asked for`);
  }
  const doc = parseManifestDocument(top.bytes, top.contentType, ref.full);
  if (doc.kind === 'manifest') {
    checkPullable(doc.manifest, ref.full);
    return { digest, manifestDigest: digest, manifest: doc.manifest, documents: [top.bytes] };
  }
  const entry = selectPlatform(doc.manifests, ref.full);
  const what = `${ref.full} (manifest ${shortDigest(entry.digest)} for ${entry.platform?.os}/${entry.platform?.architecture})`;
  const child = await repo.getManifest(entry.digest, maxBytes, what);
  const childDigest = sha256Of(child.bytes);
  if (childDigest !== entry.digest) throw new RegistryError('digest', `${what}: the registry sent a manifest with digest ${shortDigest(childDigest)}`);
  const inner = parseManifestDocument(child.bytes, child.contentType, what);
  if (inner.kind !== 'manifest') throw new RegistryError('unsupported', `${what}: an index inside an index is not supported`);
  checkPullable(inner.manifest, what);
  return { digest, manifestDigest: childDigest, manifest: inner.manifest, documents: [child.bytes, top.bytes] };
}

/** The image config, from the store when it has it, else from the registry; checked against its digest. */
async function fetchConfig(target: PullTarget, repo: RepositoryClient, manifest: Manifest, ref: RemoteReference): Promise<PulledImage['config']> {
  const digest = manifest.config.digest as Digest;
  const what = `${ref.full}: config ${shortDigest(digest)}`;
  if (manifest.config.size > MAX_CONFIG_BYTES) throw new RegistryError('too-large', `${what} is ${manifest.config.size} bytes, over the limit of ${MAX_CONFIG_BYTES}`);
  const inStore = (await target.reserve({ blobs: [digest], layers: [] })).blobs.has(digest);
  const bytes = inStore ? await target.blobs.read(digest) : await repo.readBlob(digest, MAX_CONFIG_BYTES, what);
  if (sha256Of(bytes) !== digest) throw new RegistryError('digest', `${what}: the bytes the registry sent do not match the digest`);
  const doc = parseJson(bytes.toString('utf8'), ImageConfigDocSchema, what);
  if (doc.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new RegistryError('protocol', `${what}: manifest lists ${manifest.layers.length} layers but the config has ${doc.rootfs.diff_ids.length} diff_ids`);
  }
  const want = nodePlatform();
  if ((doc.os && doc.os !== want.os) || (doc.architecture && doc.architecture !== want.architecture)) {
    throw new RegistryError('platform', `${ref.full}: the image is for ${doc.os}/${doc.architecture}, and this node is ${want.os}/${want.architecture}`);
  }
  return { bytes, digest, doc };
}

type LayerEmit = (status: PullLayerStatus, extra?: { current?: number; total?: number; message?: string }) => void;

interface LayerToFetch {
  diffId: Digest;
  blob: Digest;
  /** The blob's size from the manifest. */
  size: number;
  /** The store has the blob (pulled before, or loaded) but not the layer. */
  blobInStore: boolean;
}

/** A blob the store has already is only unpacked; others are downloaded. */
async function fetchLayer(target: PullTarget, repo: RepositoryClient, t: LayerToFetch, attempts: number, emit: LayerEmit): Promise<UnpackedLayer> {
  const what = `layer ${shortDigest(t.blob)} of ${repo.name}`;
  if (t.blobInStore) {
    emit('Extracting');
    return target.layers.unpack(target.blobs.path(t.blob), what, { diffId: t.diffId, verifiedBlobDigest: t.blob });
  }
  return downloadAndUnpack(target, repo, t, attempts, what, emit);
}

/**
 * Streams one layer from the registry to the blob's temp file and to the unpacker at once. The blob's
 * digest is checked when the last byte has arrived and before the unpacker sees the end of its input,
 * so a layer from bytes that do not match is never put in place.
 */
async function downloadAndUnpack(target: PullTarget, repo: RepositoryClient, t: LayerToFetch, attempts: number, what: string, emit: LayerEmit): Promise<UnpackedLayer> {
  const tmpFile = target.tmp();
  const file = createWriteStream(tmpFile, { flags: 'wx', mode: 0o644 });
  const feed = new PassThrough({ highWaterMark: 1 << 20 });
  // The feed's failures reach us through the unpacker's result; the file's are checked as we write.
  feed.on('error', () => {});
  let fileError: Error | undefined;
  file.on('error', (err) => { fileError = err; });
  const hash = createHash('sha256');
  const progress = throttled((current) => emit('Downloading', { current, total: t.size }), t.size);
  let unpack: Promise<UnpackedLayer> | undefined;
  let unpackDone = false;
  let unpackSettled: Promise<void> = Promise.resolve();
  const startUnpack = (compression: Compression): void => {
    unpack = target.layers.unpack({ stream: feed, compression }, what, { diffId: t.diffId });
    const settle = (): void => { unpackDone = true; };
    unpackSettled = unpack.then(settle, settle);
  };
  let received = 0;
  try {
    const chunks = blobChunks(repo, { digest: t.blob, size: t.size }, {
      attempts,
      onRetry: (attempt, at, why) => emit('Retrying', { current: at, total: t.size, message: `attempt ${attempt + 1} of ${attempts} after: ${why}` }),
    });
    for await (const chunk of chunks) {
      if (unpack === undefined) startUnpack(sniffCompression(chunk));
      hash.update(chunk);
      received += chunk.length;
      if (fileError) throw fileError;
      if (!file.write(chunk)) await once(file, 'drain');
      // Once the unpacker has stopped (failed, or done before the blob's last bytes), the rest is still
      // downloaded and hashed: a digest mismatch is the truer report than whatever corrupt bytes made
      // tar or gunzip say, and the blob is kept whole.
      if (!unpackDone && !feed.write(chunk)) await Promise.race([once(feed, 'drain'), unpackSettled]);
      progress(received);
    }
    emit('Verifying Checksum');
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    if (digest !== t.blob) {
      throw new RegistryError('digest', `${what}: the downloaded bytes do not match the digest (got ${shortDigest(digest)}); the registry's copy is corrupt`);
    }
    emit('Download complete');
    await closeFile(file);
    if (unpack === undefined) startUnpack('none'); // an empty blob: let tar say what it makes of it
    emit('Extracting');
    feed.end();
    const result = await (unpack as unknown as Promise<UnpackedLayer>);
    await target.blobs.adopt(tmpFile, t.blob);
    return result;
  } catch (err) {
    // With an error, so that the unpacker's pipeline fails too (a bare destroy() only closes it).
    feed.destroy(err instanceof Error ? err : new Error(String(err)));
    file.destroy();
    await unpackSettled;
    await rm(tmpFile, { force: true });
    if (err instanceof ImageError) throw err;
    throw new RegistryError('interrupted', `${what}: ${reason(err)}`, { cause: err });
  }
}

async function closeFile(file: WriteStream): Promise<void> {
  if (file.errored) throw file.errored;
  file.end();
  await once(file, 'finish'); // rejects when the file fails instead
}
