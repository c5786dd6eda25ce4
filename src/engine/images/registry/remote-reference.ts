/**
 * A reference as a registry sees it: which registry, which repository in it, and which tag or digest.
 * Docker's short names are expanded the way docker does ("busybox" → docker.io/library/busybox:latest),
 * and the store's own short tag ("busybox:latest", "host:5000/a/b:tag") is kept alongside, so that the
 * pulled image is tagged exactly as `image import` or `load` would have tagged it.
 */
import { isDigest, type Digest } from '../digest.js';
import { DEFAULT_TAG, parseReference } from '../reference.js';
import { RegistryError } from './errors.js';

export const DOCKER_HUB = 'docker.io';

export interface RemoteReference {
  /** "docker.io", "registry.local:5000", "127.0.0.1:5000" */
  registry: string;
  /** Repository path inside the registry: "library/busybox", "shop/web" */
  repository: string;
  /** The tag, unless the reference names a digest only. */
  tag?: string;
  digest?: Digest;
  /** The store's tag for it ("busybox:latest"), absent for a digest-only reference. */
  localTag?: string;
  /** Docker's full spelling: "docker.io/library/busybox:latest", "host:5000/a@sha256:…" */
  full: string;
}

/** Parses `NAME[:TAG][@sha256:HEX]`; a digest wins over a tag (as in docker), the tag stays for display. */
export function parseRemoteReference(input: string): RemoteReference {
  const at = input.indexOf('@');
  let digest: Digest | undefined;
  let rest = input;
  if (at !== -1) {
    const d = input.slice(at + 1);
    if (!isDigest(d)) throw new RegistryError('protocol', `invalid reference ${JSON.stringify(input)}: digest must be sha256:<64 hex digits>`);
    digest = d;
    rest = input.slice(0, at);
  }
  const hasTag = rest.lastIndexOf(':') > rest.lastIndexOf('/');
  const ref = parseReference(rest); // the store's grammar and normalisation (throws ImageError)
  const { registry, repository } = splitName(ref.name);
  const tag = digest !== undefined && !hasTag ? undefined : ref.tag;
  const base = `${registry}/${repository}`;
  const full = digest !== undefined ? `${base}${tag !== undefined ? `:${tag}` : ''}@${digest}` : `${base}:${tag ?? DEFAULT_TAG}`;
  const out: RemoteReference = { registry, repository, full };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  if (digest === undefined) out.localTag = `${ref.name}:${ref.tag}`;
  return out;
}

/** The store's normalised name ("busybox", "demo/x", "host:5000/a/b") split into registry and path. */
function splitName(name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    return { registry: first, repository: name.slice(slash + 1) };
  }
  return { registry: DOCKER_HUB, repository: slash === -1 ? `library/${name}` : name };
}

/** The name the store gives an image of `repository` on `registry` (the inverse of splitName). */
export function localName(registry: string, repository: string): string {
  if (registry !== DOCKER_HUB) return `${registry}/${repository}`;
  return repository.startsWith('library/') && repository.split('/').length === 2 ? repository.slice('library/'.length) : repository;
}

/** The reference with its tag (or digest) as the manifest endpoint wants it. */
export function manifestRef(ref: RemoteReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}
