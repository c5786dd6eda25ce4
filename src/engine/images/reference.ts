/**
 * Image references ("busybox", "demo/busybox:1.36", "registry.local:5000/x/y:tag") in docker's grammar,
 * normalised to the short "name:tag" form docker shows: a default tag of "latest", and the docker.io
 * and library/ prefixes dropped, so that "busybox", "busybox:latest" and "docker.io/library/busybox"
 * are the same tag.
 */
import { ImageError } from './errors.js';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
export const DEFAULT_TAG = 'latest';

export interface Reference {
  /** Repository name, normalised ("busybox", "demo/busybox", "registry:5000/x"). */
  name: string;
  tag: string;
}

/** Parses a reference or returns a reason why it is not one. */
export function tryParseReference(input: string): Reference | string {
  if (input.length === 0) return 'empty reference';
  if (input.length > 255) return 'reference longer than 255 characters';
  if (input.includes('@')) return 'digest references (name@sha256:…) cannot be used as a tag';
  const slash = input.lastIndexOf('/');
  const colon = input.lastIndexOf(':');
  let name = input;
  let tag = DEFAULT_TAG;
  if (colon > slash) {
    name = input.slice(0, colon);
    tag = input.slice(colon + 1);
    if (!TAG.test(tag)) return `invalid tag ${JSON.stringify(tag)} (letters, digits, "_", "." and "-", at most 128)`;
  }
  const parts = name.split('/');
  let domain: string | undefined;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    domain = first;
    parts.shift();
    if (!DOMAIN.test(domain)) return `invalid registry host ${JSON.stringify(domain)}`;
  }
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      return p.toLowerCase() !== p && COMPONENT.test(p.toLowerCase())
        ? 'repository name must be lowercase'
        : `invalid repository name component ${JSON.stringify(p)}`;
    }
  }
  if (domain === 'docker.io' || domain === 'index.docker.io') {
    domain = undefined;
    if (parts.length === 2 && parts[0] === 'library') parts.shift();
  }
  return { name: [domain, ...parts].filter((p) => p !== undefined).join('/'), tag };
}

export function parseReference(input: string): Reference {
  const r = tryParseReference(input);
  if (typeof r === 'string') throw new ImageError(`invalid reference ${JSON.stringify(input)}: ${r}`);
  return r;
}

/** "busybox" → "busybox:latest"; throws ImageError for a malformed reference. */
export function normalizeRef(input: string): string {
  const r = parseReference(input);
  return `${r.name}:${r.tag}`;
}
