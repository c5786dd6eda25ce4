/**
 * What a format reader (OCI layout, docker archive) makes of its input before anything is stored: the
 * image's documents, already checked against their digests, and where each layer blob lies in the
 * source. The store then ingests and unpacks the layers.
 */
import { basename } from 'node:path';
import type { Digest } from './digest.js';
import type { ImageConfigDoc } from './image-config.js';
import { ImageError } from './errors.js';
import { tryParseReference } from './reference.js';

export interface LayerSource {
  /** Member path in the source. */
  rel: string;
  /** The blob's digest when the manifest names it (docker-save archives do not). */
  blobDigest?: Digest;
  diffId: Digest;
}

export interface ImageCandidate {
  refs: string[];
  config: { bytes: Buffer; digest: Digest; doc: ImageConfigDoc };
  /** Further documents to keep (the manifest) */
  documents: Buffer[];
  layers: LayerSource[];
}

/** The layers of a config must pair up one to one with the manifest's layer blobs. */
export function checkLayerCount(what: string, blobs: number, diffIds: number): void {
  if (blobs !== diffIds) {
    throw new ImageError(`${what}: manifest lists ${blobs} layers but the config has ${diffIds} diff_ids`);
  }
}

/**
 * A repository name to go with a bare tag (OCI layouts from umoci and skopeo name only the tag, e.g.
 * "latest"): the file or directory name without its extensions, "busybox.oci.tar" → "busybox".
 */
export function defaultRepoName(path: string): string | undefined {
  const name = basename(path).replace(/(\.(tar|tgz|gz|oci|zst|docker))+$/i, '').toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  const parsed = tryParseReference(name);
  return typeof parsed === 'string' ? undefined : parsed.name;
}
