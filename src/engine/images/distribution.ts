/**
 * The node's side of "ship": pulls and pushes through one registry client, with the credentials of
 * `tsswarm login` (or docker's own file), or those a request brings (a service created with
 * --with-registry-auth). Pulls of the same reference share one transfer: a node starting six tasks
 * of one image downloads it once.
 */
import type { Logger } from 'pino';
import { ImageError } from './errors.js';
import type { ImageRecord } from './metadata.js';
import { RegistryClient, type RegistryClientOptions } from './registry/client.js';
import { CredentialStore, type CredentialLookup, type Credentials } from './registry/credentials.js';
import type { PullEvent, PushEvent } from './registry/progress.js';
import { resolveDigest } from './registry/pull.js';
import type { PushResult } from './registry/push.js';
import { parseRemoteReference } from './registry/remote-reference.js';
import type { ImageStore, PullResult } from './store.js';

/** When `container run` and tasks pull: only a missing image (docker's default), every time, or never. */
export type PullPolicy = 'missing' | 'always' | 'never';

/** Credentials a request brings for one registry (docker's X-Registry-Auth). */
export interface RegistryAuth extends Credentials {
  registry: string;
}

export interface DistributionOptions {
  store: ImageStore;
  /** Where `login` keeps credentials (docker's config.json format); docker's own file is read too. */
  credentials?: CredentialStore;
  client?: Omit<RegistryClientOptions, 'credentials'>;
  log?: Logger;
}

export class ImageDistribution {
  readonly credentials: CredentialStore;
  private readonly client: RegistryClient;
  private readonly inFlight = new Map<string, { result: Promise<PullResult>; listeners: Set<(e: PullEvent) => void> }>();

  constructor(private readonly opts: DistributionOptions) {
    this.credentials = opts.credentials ?? new CredentialStore();
    this.client = new RegistryClient({ ...opts.client, credentials: this.credentials.lookup() });
  }

  /**
   * `docker pull`. A pull of a reference already being pulled joins it (its progress from then on):
   * one transfer per image per node, whoever asked.
   */
  pull(ref: string, opts: { auth?: RegistryAuth; onProgress?: (e: PullEvent) => void } = {}): Promise<PullResult> {
    const key = parseRemoteReference(ref).full;
    let pull = this.inFlight.get(key);
    if (!pull) {
      const listeners = new Set<(e: PullEvent) => void>();
      const result = this.withClient(opts.auth, (client) => this.opts.store.pull(ref, { client, onProgress: (e) => { for (const l of listeners) l(e); } }))
        .finally(() => this.inFlight.delete(key));
      pull = { result, listeners };
      this.inFlight.set(key, pull);
    }
    const { listeners } = pull;
    const listener = opts.onProgress;
    if (listener) listeners.add(listener);
    return pull.result.finally(() => { if (listener) listeners.delete(listener); });
  }

  push(ref: string, opts: { auth?: RegistryAuth; onProgress?: (e: PushEvent) => void } = {}): Promise<PushResult> {
    return this.withClient(opts.auth, (client) => this.opts.store.push(ref, { client, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) }));
  }

  /**
   * The image `ref` names, after a pull when the policy asks for one: what `container run` and a
   * task's PREPARING need. `announce` is told when a pull of a missing image gets its first answer
   * from the registry, so that a registry that cannot be reached costs one error line, not two.
   */
  async ensure(ref: string, policy: PullPolicy, opts: { auth?: RegistryAuth; onProgress?: (e: PullEvent) => void; announce?: () => void } = {}): Promise<ImageRecord> {
    const local = this.opts.store.resolve(ref);
    if (policy === 'never' || (policy === 'missing' && local)) {
      if (!local) throw new ImageError(`No such image: ${ref} (and --pull never)`);
      return local;
    }
    let announced = local !== undefined || opts.announce === undefined;
    const onProgress = (e: PullEvent): void => {
      if (!announced) { announced = true; opts.announce!(); }
      opts.onProgress?.(e);
    };
    return (await this.pull(ref, { ...(opts.auth ? { auth: opts.auth } : {}), onProgress })).image;
  }

  /** `service create`: `name:tag` → `name:tag@sha256:…` as the registry has it now. */
  async pin(ref: string, auth?: RegistryAuth): Promise<string> {
    const { ref: parsed, digest } = await this.withClient(auth, (client) => resolveDigest(client, ref));
    const name = ref.replace(/@sha256:[0-9a-f]{64}$/, '');
    return parsed.digest !== undefined ? ref : `${name}@${digest}`;
  }

  /** `docker login`: checks the credentials against the registry, then keeps them. */
  async login(registry: string, creds: Credentials): Promise<void> {
    await this.withClient({ registry, ...creds }, (client) => client.checkLogin(registry));
    await this.credentials.set(registry, creds);
  }

  logout(registry: string): Promise<boolean> {
    return this.credentials.remove(registry);
  }

  /** The credentials `login` kept for the registry of `ref`, for --with-registry-auth. */
  async authFor(ref: string): Promise<RegistryAuth | undefined> {
    const { registry } = parseRemoteReference(ref);
    const creds = await this.credentials.get(registry);
    return creds && { registry, ...creds };
  }

  close(): void {
    this.client.close();
  }

  /** The shared client, or for a request's own credentials a client of its own (tokens are per credentials). */
  private async withClient<T>(auth: RegistryAuth | undefined, fn: (client: RegistryClient) => Promise<T>): Promise<T> {
    if (!auth) return fn(this.client);
    const fallback = this.credentials.lookup();
    const lookup: CredentialLookup = async (registry) => (registry === auth.registry ? { username: auth.username, password: auth.password } : fallback(registry));
    const client = new RegistryClient({ ...this.opts.client, credentials: lookup });
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  }
}
