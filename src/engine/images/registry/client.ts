/**
 * The Docker Registry HTTP API v2 / OCI distribution API, one repository at a time: manifests (get,
 * head, put), blobs (head, get with Range, mount, monolithic and chunked upload). Every request is
 * authorized for the repository's scopes, retried once on a 401 with a fresh challenge, and every
 * failure becomes one RegistryError line that names the registry, repository and object.
 */
import type { Readable } from 'node:stream';
import { shortDigest, type Digest } from '../digest.js';
import { Authorizer, repositoryScope, type Scope } from './auth.js';
import type { CredentialLookup } from './credentials.js';
import { RegistryError } from './errors.js';
import { errorText, kindOfStatus, readLimited } from './http-body.js';
import { Transport, type Endpoint, type HttpRequest, type HttpResponse, type TransportOptions } from './transport.js';

export interface RegistryClientOptions extends TransportOptions {
  credentials?: CredentialLookup;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** One client per daemon: it keeps connections and tokens per registry across pulls and pushes. */
export class RegistryClient {
  readonly transport: Transport;
  private readonly authorizers = new Map<string, Promise<Authorizer>>();

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.transport = new Transport(opts);
  }

  /** A handle on one repository, authorized for `actions` (and pull on `mountFrom` repositories). */
  async repository(registry: string, repository: string, actions: ('pull' | 'push')[], mountFrom: string[] = []): Promise<RepositoryClient> {
    const ep = await this.transport.endpoint(registry);
    let auth = this.authorizers.get(registry);
    if (!auth) {
      auth = Promise.resolve(new Authorizer(this.transport, ep, this.opts.credentials));
      this.authorizers.set(registry, auth);
    }
    const scopes = [repositoryScope(repository, actions), ...mountFrom.filter((r) => r !== repository).map((r) => repositoryScope(r, ['pull']))];
    return new RepositoryClient(this.transport, ep, await auth, repository, scopes);
  }

  /**
   * `docker login`: checks the credentials this client looks up for `registry` by an authorized
   * GET /v2/ (for a token registry, a token is fetched with them first), as dockerd's /auth does.
   */
  async checkLogin(registry: string): Promise<void> {
    const ep = await this.transport.endpoint(registry);
    const auth = new Authorizer(this.transport, ep, this.opts.credentials);
    const header = await auth.header([]);
    const res = await this.transport.send(ep, { method: 'GET', url: '/v2/', headers: header ? { authorization: header } : {} });
    res.body.resume();
    if (res.status === 401 || res.status === 403) throw new RegistryError('unauthorized', `unauthorized: incorrect username or password for ${registry}`);
    if (res.status !== 200) throw new RegistryError(kindOfStatus(res.status), `login to ${registry}: the registry answered ${res.status}`);
  }

  close(): void {
    this.transport.close();
  }
}

export interface ManifestResponse {
  bytes: Buffer;
  /** From Content-Type, else empty (the document's own mediaType then decides). */
  contentType: string;
  /** What the registry says the digest is (Docker-Content-Digest), unverified. */
  announcedDigest?: string;
}

export class RepositoryClient {
  constructor(
    private readonly transport: Transport,
    readonly ep: Endpoint,
    private readonly auth: Authorizer,
    readonly repository: string,
    private readonly scopes: Scope[],
  ) {}

  get registry(): string {
    return this.ep.registry;
  }

  /** "127.0.0.1:5000/shop/web", for messages. */
  get name(): string {
    return `${this.ep.registry}/${this.repository}`;
  }

  /**
   * Sends a request with authorization; on a 401 fetches a header for the new challenge and, if the
   * body can be sent again, retries once.
   */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const sent = await this.auth.header(this.scopes);
    const withAuth = (h: string | undefined): HttpRequest => ({ ...req, headers: { ...req.headers, ...(h ? { authorization: h } : {}) } });
    let res = await this.transport.send(this.ep, withAuth(sent));
    if (res.status !== 401) return res;
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const retry = replayable ? await this.auth.retryHeader(headerText(res.headers['www-authenticate']), this.scopes, sent) : undefined;
    const final = retry ?? sent;
    if (retry !== undefined) {
      res.body.resume();
      res = await this.transport.send(this.ep, withAuth(retry));
    }
    if (res.status === 401 && final?.startsWith('Basic ')) {
      res.body.resume();
      throw new RegistryError('unauthorized', `unauthorized: incorrect username or password for ${this.ep.registry}`);
    }
    return res;
  }

  /** Turns an unexpected answer into one line; `what` names the object ("manifest shop/web:1.4"). */
  async fail(res: HttpResponse, what: string): Promise<never> {
    const why = await errorText(res);
    const kind = kindOfStatus(res.status);
    if (kind === 'unauthorized') {
      throw new RegistryError('unauthorized', `${res.status === 403 ? 'denied' : 'unauthorized'}: ${why} (${what})`);
    }
    if (kind === 'not-found') throw new RegistryError('not-found', `No such image: ${what} (${why})`);
    throw new RegistryError(kind, `${what}: registry ${this.ep.registry} answered ${why}`);
  }

  /** GET a manifest by tag or digest, its size limited while it is read. */
  async getManifest(reference: string, maxBytes: number, what: string): Promise<ManifestResponse> {
    const res = await this.request({ method: 'GET', url: `/v2/${this.repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) return this.fail(res, what);
    const bytes = await readLimited(res, maxBytes, `manifest of ${what}`).catch((err: unknown) => {
      throw err instanceof RegistryError ? err : new RegistryError('interrupted', `manifest of ${what}: ${(err as Error).message}`);
    });
    const out: ManifestResponse = { bytes, contentType: headerText(res.headers['content-type'])?.split(';')[0]?.trim() ?? '' };
    const announced = headerText(res.headers['docker-content-digest']);
    if (announced) out.announcedDigest = announced;
    return out;
  }

  /** PUT a manifest under a tag (or its digest); resolves with the digest the registry announces. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, what: string): Promise<string | undefined> {
    const res = await this.request({
      method: 'PUT', url: `/v2/${this.repository}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes,
    });
    if (res.status !== 201 && res.status !== 200) return this.fail(res, what);
    res.body.resume();
    return headerText(res.headers['docker-content-digest']);
  }

  /** GET a blob from byte `from` on; the caller streams the body (206 when the Range was honoured). */
  async getBlob(digest: Digest, from = 0): Promise<HttpResponse> {
    const headers: Record<string, string> = from > 0 ? { range: `bytes=${from}-` } : {};
    const res = await this.request({ method: 'GET', url: `/v2/${this.repository}/blobs/${digest}`, headers });
    if (res.status !== 200 && res.status !== 206) return this.fail(res, `blob ${shortDigest(digest)} of ${this.name}`);
    return res;
  }

  /** Reads a small blob (an image config) whole, with a size limit. */
  async readBlob(digest: Digest, maxBytes: number, what: string): Promise<Buffer> {
    const res = await this.getBlob(digest);
    return readLimited(res, maxBytes, what);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    const res = await this.request({ method: 'HEAD', url: `/v2/${this.repository}/blobs/${digest}` });
    res.body.resume();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return this.fail(res, `blob ${shortDigest(digest)} of ${this.name}`);
  }

  /**
   * Starts an upload, or mounts the blob from repository `from` of the same registry. Resolves with
   * 'mounted' when the registry linked the blob, else with the upload's location.
   */
  async startUpload(digest: Digest, from?: string): Promise<'mounted' | URL> {
    const query = from !== undefined ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : '';
    const res = await this.request({ method: 'POST', url: `/v2/${this.repository}/blobs/uploads/${query}`, headers: { 'content-length': '0' }, body: Buffer.alloc(0) });
    res.body.resume();
    if (res.status === 201 && from !== undefined) return 'mounted';
    if (res.status !== 202) return this.fail(res, `upload of blob ${shortDigest(digest)} to ${this.name}`);
    return this.location(res, digest);
  }

  /** Sends a whole blob in one PUT (the body streams from disk) and completes the upload. */
  async putBlob(location: URL, digest: Digest, size: number, body: Readable): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.request({ method: 'PUT', url, headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body });
    res.body.resume();
    if (res.status !== 201) return this.fail(res, `upload of blob ${shortDigest(digest)} to ${this.name}`);
  }

  /** Sends one chunk (bytes start..start+size-1) of a chunked upload; resolves with the next location. */
  async patchBlob(location: URL, digest: Digest, start: number, size: number, body: Readable): Promise<URL> {
    const res = await this.request({
      method: 'PATCH', url: location,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), 'content-range': `${start}-${start + size - 1}` },
      body,
    });
    res.body.resume();
    if (res.status !== 202) return this.fail(res, `upload of blob ${shortDigest(digest)} to ${this.name} (chunk at ${start})`);
    return this.location(res, digest);
  }

  /** Completes a chunked upload. */
  async finishUpload(location: URL, digest: Digest): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.request({ method: 'PUT', url, headers: { 'content-length': '0' }, body: Buffer.alloc(0) });
    res.body.resume();
    if (res.status !== 201) return this.fail(res, `upload of blob ${shortDigest(digest)} to ${this.name}`);
  }

  private location(res: HttpResponse, digest: Digest): URL {
    const loc = headerText(res.headers.location);
    if (!loc) throw new RegistryError('protocol', `upload of blob ${shortDigest(digest)} to ${this.name}: the registry gave no upload location`);
    return new URL(loc, this.ep.base);
  }
}

function headerText(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}
