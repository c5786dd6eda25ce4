/**
 * Registry credentials in the format of docker's config.json (`{"auths": {"HOST": {"auth":
 * base64("user:pass")}}}`), kept in a 0600 file of tsswarm's own, and read from docker's own
 * ~/.docker/config.json as a fallback so that a user's existing `docker login` works as it is.
 *
 * Docker Hub's key is "https://index.docker.io/v1/" in docker's file; other registries are keyed by
 * "host:port", sometimes with a scheme or path (older clients): any of these spellings matches.
 */
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../../durable-file.js';
import { RegistryError } from './errors.js';
import { DOCKER_HUB } from './remote-reference.js';

export interface Credentials {
  username: string;
  password: string;
}

/** What the registry client asks: the credentials for a registry ("docker.io", "host:5000"), if any. */
export type CredentialLookup = (registry: string) => Promise<Credentials | undefined>;

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

interface ConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  [other: string]: unknown;
}

/** docker's own file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(): string {
  return join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/** tsswarm's file: $TSSWARM_CONFIG/config.json, else ~/.tsswarm/config.json. */
export function defaultCredentialsPath(): string {
  return join(process.env.TSSWARM_CONFIG ?? join(homedir(), '.tsswarm'), 'config.json');
}

/** The host part of a config key: "https://index.docker.io/v1/" → "docker.io", "http://h:5000/" → "h:5000". */
export function registryOfKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

function keyFor(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_KEY : registry;
}

export class CredentialStore {
  /**
   * `path` is the file login writes; `fallbacks` are read (never written) when it has no entry.
   */
  constructor(readonly path: string = defaultCredentialsPath(), readonly fallbacks: string[] = [dockerConfigPath()]) {}

  async get(registry: string): Promise<Credentials | undefined> {
    for (const file of [this.path, ...this.fallbacks]) {
      const config = await readConfig(file);
      for (const [key, entry] of Object.entries(config.auths ?? {})) {
        if (registryOfKey(key) !== registry) continue;
        const creds = decodeEntry(entry, file, key);
        if (creds) return creds;
      }
    }
    return undefined;
  }

  /** Saves credentials (after the caller checked them against the registry, as `docker login` does). */
  async set(registry: string, creds: Credentials): Promise<void> {
    const config = await readConfig(this.path);
    const auths = Object.fromEntries(Object.entries(config.auths ?? {}).filter(([k]) => registryOfKey(k) !== registry));
    auths[keyFor(registry)] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
    await this.write({ ...config, auths });
  }

  /** Forgets a registry's credentials; false when there were none in tsswarm's file. */
  async remove(registry: string): Promise<boolean> {
    const config = await readConfig(this.path);
    const entries = Object.entries(config.auths ?? {});
    const kept = entries.filter(([k]) => registryOfKey(k) !== registry);
    if (kept.length === entries.length) return false;
    await this.write({ ...config, auths: Object.fromEntries(kept) });
    return true;
  }

  lookup(): CredentialLookup {
    return (registry) => this.get(registry);
  }

  private async write(config: ConfigFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    // writeFileAtomic creates its temp file 0600, so the secret is never readable by others, even briefly.
    await writeFileAtomic(this.path, `${JSON.stringify(config, null, '\t')}\n`);
  }
}

async function readConfig(file: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new RegistryError('unauthorized', `cannot read credentials file ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as ConfigFile;
  } catch (err) {
    throw new RegistryError('unauthorized', `credentials file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function decodeEntry(entry: NonNullable<ConfigFile['auths']>[string], file: string, key: string): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon <= 0) throw new RegistryError('unauthorized', `credentials file ${file}: entry ${key} has a malformed "auth" (want base64 of user:password)`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  return undefined;
}
