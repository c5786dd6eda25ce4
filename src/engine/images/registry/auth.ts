/**
 * Authorization for one registry: learns its challenge once (GET /v2/), then answers every request
 * with the right header: none (anonymous), Basic (htpasswd), or a bearer token fetched from the
 * token endpoint the challenge names, for exactly the scopes asked ("repository:shop/web:pull,push"),
 * cached until it expires.
 */
import { parseChallenges, type Challenge } from './challenge.js';
import type { CredentialLookup, Credentials } from './credentials.js';
import { RegistryError } from './errors.js';
import { errorText, readLimited } from './http-body.js';
import type { Endpoint, Transport } from './transport.js';

const TOKEN_BODY_MAX = 1 << 20;
/** Tokens are refreshed this long before the expiry they announce, so none expires mid-request. */
const EXPIRY_MARGIN_MS = 30_000;
/** The spec's default when the token endpoint names no expiry. */
const DEFAULT_TOKEN_SECONDS = 60;

export type Scope = string;

export function repositoryScope(repository: string, actions: ('pull' | 'push')[]): Scope {
  return `repository:${repository}:${actions.join(',')}`;
}

export class Authorizer {
  private challenge: Promise<Challenge | undefined> | undefined;
  private readonly tokens = new Map<string, { header: string; expires: number }>();

  constructor(private readonly transport: Transport, private readonly ep: Endpoint, private readonly credentials: CredentialLookup | undefined) {}

  /** The Authorization header for requests needing `scopes`, or undefined for an open registry. */
  async header(scopes: Scope[]): Promise<string | undefined> {
    const challenge = await this.learnChallenge();
    if (!challenge) return undefined;
    return this.headerFor(challenge, scopes, false);
  }

  /**
   * After a 401 to a request that carried `header`: the header to retry with, from the new challenge
   * (a token for other scopes, or a fresh one), or undefined when retrying cannot help.
   */
  async retryHeader(wwwAuthenticate: string | undefined, scopes: Scope[], sent: string | undefined): Promise<string | undefined> {
    const challenge = wwwAuthenticate ? parseChallenges(wwwAuthenticate)[0] : undefined;
    if (!challenge) return undefined;
    this.challenge = Promise.resolve(challenge);
    const next = await this.headerFor(challenge, scopes, true);
    return next === sent ? undefined : next;
  }

  private learnChallenge(): Promise<Challenge | undefined> {
    this.challenge ??= (async () => {
      const res = await this.transport.send(this.ep, { method: 'GET', url: '/v2/' });
      res.body.resume();
      if (res.status !== 401) return undefined;
      return parseChallenges(String(res.headers['www-authenticate'] ?? ''))[0];
    })();
    this.challenge.catch(() => { this.challenge = undefined; });
    return this.challenge;
  }

  private async headerFor(challenge: Challenge, scopes: Scope[], fresh: boolean): Promise<string | undefined> {
    const creds = await this.credentials?.(this.ep.registry);
    if (challenge.scheme === 'basic') {
      return creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    }
    if (challenge.scheme !== 'bearer') {
      throw new RegistryError('unauthorized', `registry ${this.ep.registry} asks for ${challenge.scheme} authentication, which tsswarm does not support (only basic and bearer)`);
    }
    const key = [...scopes].sort().join(' ');
    const cached = this.tokens.get(key);
    if (!fresh && cached && cached.expires > Date.now()) return cached.header;
    const token = await this.fetchToken(challenge, scopes, creds);
    this.tokens.set(key, token);
    return token.header;
  }

  /** The token flow of the distribution spec: GET realm?service=…&scope=…, Basic auth when we have credentials. */
  private async fetchToken(challenge: Challenge, scopes: Scope[], creds: Credentials | undefined): Promise<{ header: string; expires: number }> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('protocol', `registry ${this.ep.registry} asks for a bearer token but names no realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('protocol', `registry ${this.ep.registry} names an invalid token realm ${JSON.stringify(realm)}`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const started = Date.now();
    const res = await this.transport.send(this.ep, { method: 'GET', url, headers });
    if (res.status === 401 || res.status === 403) {
      const why = await errorText(res);
      const what = creds ? `incorrect username or password for ${this.ep.registry}` : `authentication required by ${this.ep.registry}`;
      throw new RegistryError('unauthorized', `unauthorized: ${what} (token server: ${why})`);
    }
    if (res.status !== 200) {
      throw new RegistryError('protocol', `token server ${url.origin}${url.pathname} for ${this.ep.registry}: ${await errorText(res)}`);
    }
    const body = await readLimited(res, TOKEN_BODY_MAX, `token from ${url.origin}`);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch {
      throw new RegistryError('protocol', `token server ${url.origin}${url.pathname} answered something other than JSON`);
    }
    const token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : doc.access_token;
    if (typeof token !== 'string' || token === '') throw new RegistryError('protocol', `token server ${url.origin}${url.pathname} answered without a token`);
    const seconds = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_SECONDS;
    return { header: `Bearer ${token}`, expires: started + seconds * 1000 - EXPIRY_MARGIN_MS };
  }
}
