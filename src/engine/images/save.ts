/**
 * `image save`: images as one tar that `docker load`, `skopeo` and `tsswarm image load` read. The
 * docker format is what docker 25+ writes (an OCI image layout plus docker's manifest.json); the oci
 * format is the layout alone. Blobs are hard-linked from the store into a scratch dir and streamed
 * into the tar from there: nothing is read into memory whole.
 */
import { link, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import type { BlobStore } from './blob-store.js';
import { sha256Of, type Digest } from './digest.js';
import { ImageError } from './errors.js';
import { MediaType } from './image-config.js';
import type { StoredImage } from './metadata.js';
import { manifestFor } from './registry/push.js';
import { parseRemoteReference } from './registry/remote-reference.js';

export type SaveFormat = 'docker' | 'oci';

export interface SaveRequest {
  /** Each image with the tags to record for it (those the user named, or all of its own). */
  images: { image: StoredImage; tags: string[] }[];
  blobs: BlobStore;
  scratch: string;
  out: string;
  format: SaveFormat;
}

export async function saveImages(req: SaveRequest): Promise<void> {
  const dir = req.scratch;
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  try {
    const index: object[] = [];
    const dockerManifest: object[] = [];
    for (const { image, tags } of req.images) {
      const manifest = await manifestFor({ image: { id: image.id as Digest, layers: image.layers as Digest[], blobs: image.blobs as Digest[] }, blobs: req.blobs, mountCandidates: [] });
      const manifestDigest = sha256Of(manifest.bytes);
      await writeFile(blobPath(dir, manifestDigest), manifest.bytes);
      for (const d of [manifest.manifest.config.digest, ...manifest.manifest.layers.map((l) => l.digest)]) await linkBlob(req.blobs, dir, d as Digest);
      const descriptor = { mediaType: manifest.mediaType, digest: manifestDigest, size: manifest.bytes.length };
      if (tags.length === 0) index.push(descriptor);
      for (const tag of tags) {
        const ref = parseRemoteReference(tag);
        index.push({ ...descriptor, annotations: { 'io.containerd.image.name': ref.full, 'org.opencontainers.image.ref.name': ref.tag ?? 'latest' } });
      }
      dockerManifest.push({
        Config: `blobs/sha256/${hex(manifest.manifest.config.digest)}`,
        RepoTags: tags,
        Layers: manifest.manifest.layers.map((l) => `blobs/sha256/${hex(l.digest)}`),
      });
    }
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index }));
    const entries = ['oci-layout', 'index.json', 'blobs'];
    if (req.format === 'docker') {
      await writeFile(join(dir, 'manifest.json'), JSON.stringify(dockerManifest));
      entries.push('manifest.json');
    }
    const partial = `${req.out}.tsswarm-partial`;
    try {
      await tar.c({ cwd: dir, file: partial, portable: true }, entries);
      await rename(partial, req.out);
    } catch (err) {
      await rm(partial, { force: true });
      throw new ImageError(`image save: cannot write ${req.out}: ${(err as Error).message}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function hex(d: string): string {
  return d.slice('sha256:'.length);
}

function blobPath(dir: string, d: string): string {
  return join(dir, 'blobs', 'sha256', hex(d));
}

async function linkBlob(blobs: BlobStore, dir: string, d: Digest): Promise<void> {
  await link(blobs.path(d), blobPath(dir, d)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}
