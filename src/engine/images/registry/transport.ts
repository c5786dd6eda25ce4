/**
 * HTTP to registries: which scheme and which CAs to use for a registry, as docker decides it, and
 * requests with bounded time, streaming bodies both ways.
 *
 * - HTTPS with the system CAs plus any `*.crt` in certs.d/HOST:PORT/ (and client.cert/client.key for
 *   mutual TLS), looked up in tsswarm's and docker's certs.d folders.
 * - Plain HTTP only for registries configured as insecure and for loopback addresses (docker treats
 *   127.0.0.0/8 as insecure by default): HTTPS is tried first, without verifying the certificate, and
 *   HTTP is used when the registry does not speak TLS at all.
 * - A connect timeout, and an idle timeout that covers waiting for the headers and every pause while
 *   a body streams: a registry that goes silent fails the request in bounded time.
 *
 * node:http/https rather than the built-in fetch: Node 20's fetch cannot take per-registry CAs or
 * client certificates without the undici package, and its timeouts are harder to bound per read.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { RegistryError } from './errors.js';
import { DOCKER_HUB } from './remote-reference.js';

export interface TransportOptions {
  /** Registries that may be plain HTTP or have unverifiable certificates: "host:port", "host", or a CIDR. */
  insecureRegistries?: string[];
  /** Folders of per-registry CAs (certs.d/HOST:PORT/*.crt); the first that has the registry's folder wins. */
  certsDirs?: string[];
  connectTimeoutMs?: number;
  /** Longest silence while waiting for an answer or for the next bytes of a body. */
  readTimeoutMs?: number;
  /** Name resolution for registry hosts (default: the system's), e.g. to pin a registry's address. */
  lookup?: LookupFunction;
}

export const DEFAULT_CERTS_DIRS = ['/etc/tsswarm/certs.d', '/etc/docker/certs.d'];
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_READ_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;

/** Where a registry answers: base URL and the agent (keep-alive, TLS settings) for it. */
export interface Endpoint {
  registry: string;
  base: URL;
  agent: http.Agent;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path on the endpoint ("/v2/…") or an absolute URL (upload locations, token realms). */
  url: string | URL;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: URL;
}

export class Transport {
  private readonly endpoints = new Map<string, Promise<Endpoint>>();
  private readonly insecure: { names: Set<string>; cidrs: BlockList };
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;

  constructor(private readonly opts: TransportOptions = {}) {
    this.insecure = parseInsecure(opts.insecureRegistries ?? []);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  }

  /** The registry's endpoint, probed once (HTTPS, or HTTP where allowed and TLS is not spoken). */
  endpoint(registry: string): Promise<Endpoint> {
    let ep = this.endpoints.get(registry);
    if (!ep) {
      ep = this.probe(registry);
      this.endpoints.set(registry, ep);
      ep.catch(() => this.endpoints.delete(registry)); // a registry that was down may come back
    }
    return ep;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    for (const ep of this.endpoints.values()) ep.then((e) => e.agent.destroy(), () => {});
    this.endpoints.clear();
  }

  isInsecure(registry: string): boolean {
    const host = hostOf(registry);
    if (this.insecure.names.has(registry) || this.insecure.names.has(host)) return true;
    const family = isIP(host);
    if (family !== 0 && this.insecure.cidrs.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
    return isLoopback(host);
  }

  private async probe(registry: string): Promise<Endpoint> {
    const apiHost = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
    const insecure = this.isInsecure(registry);
    const tlsEp: Endpoint = { registry, base: new URL(`https://${apiHost}`), agent: this.httpsAgent(registry, !insecure) };
    if (!insecure) return tlsEp;
    // Docker's order for an insecure registry: HTTPS without verification, then plain HTTP.
    try {
      const res = await this.send(tlsEp, { method: 'GET', url: '/v2/' });
      res.body.resume();
      return tlsEp;
    } catch (err) {
      if (!(err instanceof RegistryError) || err.kind !== 'unreachable') throw err;
      tlsEp.agent.destroy();
      const plain: Endpoint = { registry, base: new URL(`http://${apiHost}`), agent: new http.Agent({ keepAlive: true, maxSockets: 16, ...this.lookupOption() }) };
      const res = await this.send(plain, { method: 'GET', url: '/v2/' });
      res.body.resume();
      return plain;
    }
  }

  private httpsAgent(registry: string, verify: boolean): https.Agent {
    const tls = this.tlsFiles(registry);
    return new https.Agent({
      keepAlive: true,
      maxSockets: 16,
      rejectUnauthorized: verify,
      ...this.lookupOption(),
      ...(tls.ca.length > 0 ? { ca: [...rootCertificates, ...tls.ca] } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    });
  }

  private lookupOption(): { lookup?: LookupFunction } {
    return this.opts.lookup ? { lookup: this.opts.lookup } : {};
  }

  /** CAs and client certificate from the registry's certs.d folder, as docker reads them. */
  private tlsFiles(registry: string): { ca: string[]; cert?: string; key?: string } {
    for (const root of this.opts.certsDirs ?? DEFAULT_CERTS_DIRS) {
      const dir = join(root, registry);
      if (!existsSync(dir)) continue;
      const files = readdirSync(dir);
      const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
      const out: { ca: string[]; cert?: string; key?: string } = { ca: files.filter((f) => f.endsWith('.crt')).map(read) };
      if (files.includes('client.cert') && files.includes('client.key')) {
        out.cert = read('client.cert');
        out.key = read('client.key');
      }
      return out;
    }
    return { ca: [] };
  }

  /**
   * Sends one request and resolves with the response headers; the body is left to the caller to
   * stream (or to `.resume()` to discard). GET and HEAD follow redirects (blob storage behind a
   * registry often lives elsewhere), dropping the Authorization header when the host changes.
   */
  async send(ep: Endpoint, req: HttpRequest): Promise<HttpResponse> {
    let url = typeof req.url === 'string' && req.url.startsWith('/') ? new URL(req.url, ep.base) : new URL(req.url);
    let headers = req.headers ?? {};
    for (let hop = 0; ; hop++) {
      const res = await this.once(ep, req.method, url, headers, req.body);
      const location = res.headers.location;
      const redirect = [301, 302, 303, 307, 308].includes(res.status) && location !== undefined;
      if (!redirect || (req.method !== 'GET' && req.method !== 'HEAD')) return res;
      res.body.resume();
      if (hop >= MAX_REDIRECTS) throw new RegistryError('protocol', `${ep.registry}: more than ${MAX_REDIRECTS} redirects for ${req.url.toString()}`);
      const next = new URL(location, url);
      if (next.host !== url.host) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      url = next;
    }
  }

  private once(ep: Endpoint, method: string, url: URL, headers: Record<string, string>, body: Buffer | Readable | undefined): Promise<HttpResponse> {
    const where = `${ep.registry} (${method} ${url.origin}${url.pathname})`;
    return new Promise<HttpResponse>((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      // Another host than the registry's (a redirect to storage, a token realm) gets a default agent
      // of the right scheme; the registry's own agent carries its CAs.
      const agent = url.protocol === ep.base.protocol ? ep.agent : undefined;
      const req = mod.request(url, { method, headers, ...(agent ? { agent } : {}), timeout: this.readTimeoutMs });
      let res: IncomingMessage | undefined;
      let connectTimer: NodeJS.Timeout | undefined;
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => {
          req.destroy(new RegistryError('timeout', `cannot connect to registry ${where}: no connection within ${seconds(this.connectTimeoutMs)}`));
        }, this.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('timeout', () => {
        const err = new RegistryError('timeout', `registry ${where} stopped answering (nothing for ${seconds(this.readTimeoutMs)})`);
        if (res) res.destroy(err);
        req.destroy(err);
      });
      req.on('response', (r) => {
        res = r;
        resolve({ status: r.statusCode ?? 0, headers: r.headers, body: r, url });
      });
      req.on('error', (err) => {
        clearTimeout(connectTimer);
        reject(explainNetworkError(err, where, ep.registry));
      });
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch((err: unknown) => req.destroy(err as Error));
    });
  }
}

/** One line for a failed connection, naming the registry and what to do where there is something to do. */
export function explainNetworkError(err: unknown, where: string, registry: string): RegistryError {
  if (err instanceof RegistryError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? '';
  const msg = e.message ?? String(err);
  if (code === 'ECONNREFUSED') return new RegistryError('unreachable', `cannot connect to registry ${where}: connection refused`, { cause: err });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new RegistryError('unreachable', `cannot connect to registry ${where}: unknown host`, { cause: err });
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new RegistryError('unreachable', `cannot connect to registry ${where}: ${code === 'EHOSTUNREACH' ? 'no route to host' : 'network unreachable'}`, { cause: err });
  if (/wrong version number|packet length too long/i.test(msg)) {
    return new RegistryError('unreachable', `registry ${where} answered in plain HTTP to HTTPS; if it is meant to be plain HTTP, add ${registry} to the insecure registries`, { cause: err });
  }
  if (/certificate|self[- ]signed|unable to verify|UNABLE_TO_GET_ISSUER/i.test(msg + code)) {
    return new RegistryError('unreachable', `registry ${where}: TLS certificate not trusted (${msg}); put its CA in certs.d/${registry}/ca.crt`, { cause: err });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code.startsWith('ERR_SSL') || code === 'EPROTO') {
    return new RegistryError('unreachable', `registry ${where}: connection reset (${msg})`, { cause: err });
  }
  return new RegistryError('unreachable', `registry ${where}: ${msg}`, { cause: err });
}

function parseInsecure(entries: string[]): { names: Set<string>; cidrs: BlockList } {
  const names = new Set<string>();
  const cidrs = new BlockList();
  for (const e of entries) {
    const m = /^(.+)\/(\d+)$/.exec(e);
    const family = m ? isIP(m[1] as string) : 0;
    if (m && family !== 0) cidrs.addSubnet(m[1] as string, Number(m[2]), family === 4 ? 'ipv4' : 'ipv6');
    else names.add(e.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, ''));
  }
  return { names, cidrs };
}

/** "host:5000" → "host", "[::1]:5000" → "::1". */
export function hostOf(registry: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(registry);
  if (v6) return v6[1] as string;
  const colon = registry.lastIndexOf(':');
  return colon === -1 ? registry : registry.slice(0, colon);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function seconds(ms: number): string {
  return `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(1)}s`;
}
