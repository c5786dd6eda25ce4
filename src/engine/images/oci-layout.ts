/**
 * OCI image layouts (image-spec "image-layout"): oci-layout + index.json + blobs/<alg>/<hex>, as umoci
 * and skopeo write them, in a directory or a tar. Tags come from the index's annotations.
 */
import { parseDigest, shortDigest, type Digest } from './digest.js';
import { ImageError } from './errors.js';
import {
  DescriptorSchema, goArch, ImageConfigDocSchema, IndexSchema, ManifestSchema, MediaType, parseJson,
  type Descriptor,
} from './image-config.js';
import { checkLayerCount, type ImageCandidate } from './candidate.js';
import { normalizeRef, tryParseReference } from './reference.js';
import { checkDocument, type ImageSource } from './source.js';
import { z } from 'zod';

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's (and docker 25+'s) full image name, preferred over ref.name when both exist. */
export const CONTAINERD_NAME = 'io.containerd.image.name';

export async function isOciLayout(src: ImageSource): Promise<boolean> {
  return (await src.exists('index.json')) && (await src.exists('oci-layout'));
}

function blobPath(d: Digest): string {
  return `blobs/sha256/${d.slice('sha256:'.length)}`;
}

async function readDocument(src: ImageSource, desc: Descriptor, what: string): Promise<Buffer> {
  const digest = parseDigest(desc.digest, what);
  const bytes = await src.read(blobPath(digest));
  checkDocument(bytes, what, digest);
  return bytes;
}

/** The tag an index entry carries, or none. `defaultName` completes a bare tag ("latest"). */
export function refFromAnnotations(annotations: Record<string, string> | undefined, defaultName: string | undefined): string | undefined {
  const full = annotations?.[CONTAINERD_NAME];
  if (full) return normalizeRef(full);
  const name = annotations?.[REF_NAME];
  if (!name) return undefined;
  // The spec lets ref.name be a full reference or just a tag; a ':' or '/' means it names a repository.
  if (name.includes(':') || name.includes('/')) return normalizeRef(name);
  if (defaultName === undefined) return undefined;
  const ref = tryParseReference(`${defaultName}:${name}`);
  if (typeof ref === 'string') throw new ImageError(`invalid ${REF_NAME} ${JSON.stringify(name)}: ${ref}`);
  return `${ref.name}:${ref.tag}`;
}

const isIndexType = (t: string | undefined): boolean => t === MediaType.ociIndex || t === MediaType.dockerManifestList;

/** Picks this machine's manifest out of a multi-platform index. */
function pickPlatform(manifests: Descriptor[], what: string): Descriptor {
  const arch = goArch();
  const candidates = manifests.filter((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === arch));
  const chosen = candidates[0];
  if (!chosen) {
    const have = manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ');
    throw new ImageError(`${what}: no manifest for linux/${arch} (has ${have})`);
  }
  return chosen;
}

export async function readOciLayout(src: ImageSource, defaultName: string | undefined): Promise<ImageCandidate[]> {
  const layoutDoc = parseJson((await src.read('oci-layout')).toString('utf8'), z.looseObject({ imageLayoutVersion: z.string() }), `${src.label}: oci-layout`);
  if (!layoutDoc.imageLayoutVersion.startsWith('1.')) {
    throw new ImageError(`${src.label}: unsupported OCI layout version ${layoutDoc.imageLayoutVersion}`);
  }
  const index = parseJson((await src.read('index.json')).toString('utf8'), IndexSchema, `${src.label}: index.json`);
  const byManifest = new Map<Digest, ImageCandidate>();
  for (const top of index.manifests) {
    let desc = top;
    for (let depth = 0; isIndexType(desc.mediaType); depth++) {
      if (depth > 4) throw new ImageError(`${src.label}: image indexes nested too deep`);
      const what = `index ${shortDigest(desc.digest)}`;
      const nested = parseJson((await readDocument(src, desc, what)).toString('utf8'), IndexSchema, what);
      desc = DescriptorSchema.parse(pickPlatform(nested.manifests, what));
    }
    const ref = refFromAnnotations(top.annotations, defaultName);
    const manifestDigest = parseDigest(desc.digest, `${src.label}: index.json`);
    const known = byManifest.get(manifestDigest);
    if (known) {
      if (ref !== undefined && !known.refs.includes(ref)) known.refs.push(ref);
      continue;
    }
    if (desc.mediaType !== undefined && desc.mediaType !== MediaType.ociManifest && desc.mediaType !== MediaType.dockerManifest) {
      throw new ImageError(`${src.label}: manifest ${desc.digest} has unsupported media type ${desc.mediaType}`);
    }
    const manifestWhat = `manifest ${shortDigest(manifestDigest)}`;
    const manifestBytes = await readDocument(src, desc, manifestWhat);
    const manifest = parseJson(manifestBytes.toString('utf8'), ManifestSchema, manifestWhat);
    const configDigest = parseDigest(manifest.config.digest, manifestWhat);
    const configBytes = await readDocument(src, manifest.config, `config ${shortDigest(configDigest)}`);
    const doc = parseJson(configBytes.toString('utf8'), ImageConfigDocSchema, `config ${configDigest}`);
    checkLayerCount(manifestWhat, manifest.layers.length, doc.rootfs.diff_ids.length);
    byManifest.set(manifestDigest, {
      refs: ref === undefined ? [] : [ref],
      config: { bytes: configBytes, digest: configDigest, doc },
      documents: [manifestBytes],
      layers: manifest.layers.map((l, i) => {
        if (l.mediaType?.includes('encrypted')) throw new ImageError(`${manifestWhat}: encrypted layers are not supported`);
        const blobDigest = parseDigest(l.digest, manifestWhat);
        return { rel: blobPath(blobDigest), blobDigest, diffId: parseDigest(doc.rootfs.diff_ids[i], `config ${configDigest}`) };
      }),
    });
  }
  if (byManifest.size === 0) throw new ImageError(`${src.label}: index.json lists no images`);
  return [...byManifest.values()];
}
