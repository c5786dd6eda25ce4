/**
 * Which document a registry answered and what in it we can use: an image manifest (Docker schema 2
 * or OCI) directly, a manifest list or OCI index through this node's platform entry; schema 1,
 * foreign (non-distributable) layers, encrypted layers and non-image artifacts are refused, each
 * with a line that says why.
 */
import { shortDigest, type Digest } from '../digest.js';
import { goArch, IndexSchema, ManifestSchema, MediaType, type Descriptor, type Manifest } from '../image-config.js';
import { RegistryError } from './errors.js';
import { z } from 'zod';

export const DEFAULT_MAX_MANIFEST_BYTES = 4 << 20;

export type ManifestDocument =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'manifest'; mediaType: string; manifest: Manifest };

const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest]);
const SCHEMA1_TYPES = new Set(['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws']);

export const LayerType = {
  dockerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociTar: 'application/vnd.oci.image.layer.v1.tar',
  ociGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export const ConfigType = {
  docker: 'application/vnd.docker.container.image.v1+json',
  oci: 'application/vnd.oci.image.config.v1+json',
} as const;

const USABLE_LAYERS = new Set<string>([LayerType.dockerGzip, LayerType.ociTar, LayerType.ociGzip, LayerType.ociZstd, 'application/vnd.docker.image.rootfs.diff.tar']);
const USABLE_CONFIGS = new Set<string>([ConfigType.docker, ConfigType.oci]);

/** Parses what a manifest endpoint answered; `contentType` is the response's, `what` names it for errors. */
export function parseManifestDocument(bytes: Buffer, contentType: string, what: string): ManifestDocument {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError('protocol', `${what}: the registry answered something other than a JSON manifest`);
  }
  const declared = typeof (json as { mediaType?: unknown })?.mediaType === 'string' ? (json as { mediaType: string }).mediaType : undefined;
  const schemaVersion = (json as { schemaVersion?: unknown })?.schemaVersion;
  const mediaType = declared ?? (contentType !== '' && contentType !== 'application/json' ? contentType : '');
  if (SCHEMA1_TYPES.has(mediaType) || SCHEMA1_TYPES.has(contentType) || schemaVersion === 1) {
    throw new RegistryError('unsupported', `${what}: Docker schema 1 manifests are not supported (deprecated since 2017); push the image again with a current client`);
  }
  const isIndex = INDEX_TYPES.has(mediaType) || (mediaType === '' && Array.isArray((json as { manifests?: unknown })?.manifests));
  if (isIndex) {
    const index = checked(IndexSchema, json, what);
    return { kind: 'index', mediaType: mediaType || MediaType.ociIndex, manifests: index.manifests };
  }
  if (mediaType !== '' && !MANIFEST_TYPES.has(mediaType)) {
    throw new RegistryError('unsupported', `${what}: unsupported manifest media type ${mediaType}`);
  }
  const manifest = checked(ManifestSchema, json, what);
  return { kind: 'manifest', mediaType: mediaType || MediaType.ociManifest, manifest };
}

function checked<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new RegistryError('protocol', `${what}: malformed manifest${at}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** This node's platform in OCI terms. */
export function nodePlatform(): { os: string; architecture: string; variant?: string } {
  const architecture = goArch();
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  if (architecture === 'arm') return { os: 'linux', architecture, variant: `v${(process.config.variables as { arm_version?: string }).arm_version ?? '7'}` };
  return { os: 'linux', architecture };
}

/**
 * The index entry for this node, as containerd's matcher picks it: same os and architecture, the
 * exact variant preferred, then no variant. Entries without a platform are attestations or artifacts
 * for someone else and are never picked.
 */
export function selectPlatform(manifests: Descriptor[], what: string): Descriptor {
  const want = nodePlatform();
  const same = manifests.filter((m) => m.platform?.os === want.os && m.platform.architecture === want.architecture && MANIFEST_TYPES.has(m.mediaType ?? MediaType.ociManifest));
  const chosen = same.find((m) => m.platform?.variant === want.variant) ?? same.find((m) => m.platform?.variant === undefined) ?? same[0];
  if (!chosen) {
    const have = [...new Set(manifests.filter((m) => m.platform && m.platform.os !== 'unknown').map((m) => platformText(m.platform as NonNullable<Descriptor['platform']>)))];
    const target = want.architecture === 'arm' ? `${want.os}/${want.architecture}/${want.variant}` : `${want.os}/${want.architecture}`;
    throw new RegistryError('platform', `${what}: no matching manifest for ${target} in the manifest list entries (it has ${have.join(', ') || 'none'})`);
  }
  return chosen;
}

function platformText(p: NonNullable<Descriptor['platform']>): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Refuses what we cannot or must not download, before a byte of any layer is fetched. */
export function checkPullable(manifest: Manifest, what: string): void {
  const configType = manifest.config.mediaType;
  if (configType !== undefined && !USABLE_CONFIGS.has(configType)) {
    throw new RegistryError('unsupported', `${what}: not a container image (config media type ${configType})`);
  }
  for (const layer of manifest.layers) {
    const type = layer.mediaType ?? LayerType.ociGzip;
    const name = `layer ${shortDigest(layer.digest)}`;
    if (type === LayerType.dockerForeign || type.includes('nondistributable')) {
      throw new RegistryError('unsupported', `${what}: ${name} is a foreign (non-distributable) layer (${type}), which tsswarm does not download: such layers are Windows base images`);
    }
    if (type.includes('encrypted')) throw new RegistryError('unsupported', `${what}: ${name} is encrypted (${type}), which tsswarm does not support`);
    if (!USABLE_LAYERS.has(type)) throw new RegistryError('unsupported', `${what}: ${name} has media type ${type}, which is not a container image layer`);
    if (Array.isArray((layer as { urls?: unknown }).urls)) {
      throw new RegistryError('unsupported', `${what}: ${name} lives at external URLs (a foreign layer), which tsswarm does not download`);
    }
  }
}

/** The digest and size a descriptor promises, typed. */
export function described(d: Descriptor): { digest: Digest; size: number } {
  return { digest: d.digest as Digest, size: d.size };
}
