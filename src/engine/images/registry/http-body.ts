/**
 * Reading registry responses: small bodies with a hard size limit enforced while the bytes arrive
 * (a manifest endpoint that streams gigabytes must not fill memory), and the registry's JSON error
 * body turned into one line.
 */
import type { Readable } from 'node:stream';
import { RegistryError, type RegistryErrorKind } from './errors.js';
import type { HttpResponse } from './transport.js';

/** Reads a whole body of at most `max` bytes; more (announced or actual) is a 'too-large' error. */
export async function readLimited(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  const announced = Number(res.headers['content-length'] ?? NaN);
  if (announced > max) {
    res.body.destroy();
    throw new RegistryError('too-large', `${what} is ${announced} bytes, over the limit of ${max}`);
  }
  return readStreamLimited(res.body, max, what);
}

export async function readStreamLimited(body: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      throw new RegistryError('too-large', `${what} is over the limit of ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

const ERROR_BODY_MAX = 64 * 1024;

/** The registry's own words for a failed request: "manifest unknown", "authentication required". */
export async function errorText(res: HttpResponse): Promise<string> {
  let text = '';
  try {
    text = (await readStreamLimited(res.body, ERROR_BODY_MAX, 'error body')).toString('utf8');
  } catch {
    // An unreadable error body still leaves the status code to report.
  }
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string }[]; details?: string };
    const first = doc.errors?.[0];
    if (first) return first.message || first.code?.toLowerCase().replace(/_/g, ' ') || `HTTP ${res.status}`;
    if (typeof doc.details === 'string') return doc.details;
  } catch {
    // not JSON
  }
  const line = text.split('\n')[0]?.trim().slice(0, 200);
  return line ? `HTTP ${res.status}: ${line}` : `HTTP ${res.status}`;
}

/** The error kind docker would report for an HTTP status. */
export function kindOfStatus(status: number): RegistryErrorKind {
  if (status === 404) return 'not-found';
  if (status === 401 || status === 403) return 'unauthorized';
  return 'protocol';
}
