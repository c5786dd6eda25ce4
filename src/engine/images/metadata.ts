/**
 * The store's index, <root>/images.json: images with their tags, layers and blobs, and the size of each
 * unpacked layer. It is the commit point of every change: blobs and layers are put in place first, then
 * this file is replaced atomically (temp file, fsync, rename), so after a crash it names only complete
 * content, and whatever it does not name is garbage that open() sweeps.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../../durable-file.js';
import { type Digest } from './digest.js';
import { ImageError } from './errors.js';
import type { ImageConfig } from './image-config.js';

export interface ImageRecord {
  /** "sha256:<hex of the config blob>" (for an imported rootfs, of the config we synthesised) */
  id: string;
  /** Tags, normalised "name:tag" */
  refs: string[];
  /** diff_ids, bottom layer first */
  layers: string[];
  config: ImageConfig;
  created: string;
  /** Bytes of file content in all layers, unpacked */
  size: number;
  /** "name@sha256:…" of the manifests it was pulled by (docker's RepoDigests) */
  repoDigests?: string[];
}

/** What the store keeps about an image beyond the public record: the blobs it holds on to. */
export interface StoredImage extends ImageRecord {
  blobs: string[];
  /** "name@sha256:…" of the manifests (or indexes) the image was pulled by, as docker's RepoDigests. */
  repoDigests?: string[];
}

export interface StoreState {
  version: 1;
  images: StoredImage[];
  layers: Record<string, { size: number }>;
}

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const StateSchema = z.object({
  version: z.literal(1),
  images: z.array(z.looseObject({
    id: digest,
    refs: z.array(z.string()),
    layers: z.array(digest),
    config: z.looseObject({}),
    created: z.string(),
    size: z.number(),
    blobs: z.array(digest),
    repoDigests: z.array(z.string()).optional(),
  })),
  layers: z.record(digest, z.object({ size: z.number() })),
});

export function emptyState(): StoreState {
  return { version: 1, images: [], layers: {} };
}

export async function loadState(path: string): Promise<StoreState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ImageError(`image store index ${path} is not valid JSON`);
  }
  const r = StateSchema.safeParse(parsed);
  if (!r.success) throw new ImageError(`image store index ${path} is malformed: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data as unknown as StoreState;
}

export async function saveState(path: string, state: StoreState): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(state, null, 1)}\n`);
}

export function referencedContent(state: StoreState): { layers: Set<Digest>; blobs: Set<Digest> } {
  const layers = new Set<Digest>();
  const blobs = new Set<Digest>();
  for (const img of state.images) {
    for (const l of img.layers) layers.add(l as Digest);
    for (const b of img.blobs) blobs.add(b as Digest);
  }
  return { layers, blobs };
}
