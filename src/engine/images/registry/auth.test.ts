import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from '../store.js';
import { busyboxRootfs, makeTempDir, removeTempDir } from '../../../../testkit/images.js';
import { RegistryClient } from './client.js';
import { CredentialStore } from './credentials.js';
import { RegistryError } from './errors.js';
import { htpasswdFile, startRegistry, startTokenServer, type RunningRegistry, type TokenServer } from '../../../../testkit/registry.js';

let shared: string;
let busyboxTar: string;
let work: string;
let store: ImageStore;

beforeAll(() => {
  shared = makeTempDir();
  busyboxTar = busyboxRootfs(join(shared, 'busybox.tar'));
});
afterAll(() => removeTempDir(shared));
beforeEach(async () => {
  work = makeTempDir();
  store = await ImageStore.open(join(work, 'images'));
});
afterEach(() => removeTempDir(work));

const creds = (username: string, password: string) => async () => ({ username, password });

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

describe('basic auth (htpasswd)', () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    const dir = join(shared, 'basic');
    mkdirSync(dir);
    registry = await startRegistry(dir, { htpasswd: htpasswdFile(join(dir, 'htpasswd'), 'alice', 's3cret') });
  });
  afterAll(async () => registry?.stop());

  test('push and pull work with the right password, taken from a docker config.json', async () => {
    const ref = `${registry.addr}/private/busybox:1`;
    const dockerConfig = join(work, 'docker-config.json');
    writeFileSync(dockerConfig, JSON.stringify({ auths: { [registry.addr]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
    const client = new RegistryClient({ credentials: new CredentialStore(join(work, 'tsswarm.json'), [dockerConfig]).lookup() });
    try {
      await store.importRootfs(busyboxTar, ref);
      const pushed = await store.push(ref, { client });
      const other = await ImageStore.open(join(work, 'other'));
      const pulled = await other.pull(ref, { client });
      expect(pulled.digest).toBe(pushed.digest);
    } finally {
      client.close();
    }
  });

  test('a wrong password is "unauthorized: incorrect username or password"', async () => {
    const client = new RegistryClient({ credentials: creds('alice', 'wrong') });
    const err = await failure(store.pull(`${registry.addr}/private/busybox:1`, { client }));
    expect(err.kind).toBe('unauthorized');
    expect(err.message).toBe(`unauthorized: incorrect username or password for ${registry.addr}`);
    client.close();
  });

  test('no credentials at all is "unauthorized" with the registry\'s words', async () => {
    const client = new RegistryClient();
    const err = await failure(store.pull(`${registry.addr}/private/busybox:1`, { client }));
    expect(err.kind).toBe('unauthorized');
    expect(err.message).toMatch(/^unauthorized: authentication required \(/);
    client.close();
  });
});

describe('bearer token flow', () => {
  let registry: RunningRegistry;
  let tokens: TokenServer;
  beforeAll(async () => {
    const dir = join(shared, 'token');
    mkdirSync(dir);
    tokens = await startTokenServer(dir, 'bob', 'hunter2');
    registry = await startRegistry(dir, { token: tokens });
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.close();
  });

  test('the challenge leads to the token endpoint with service and per-repository scopes, and the token is used', async () => {
    const ref = `${registry.addr}/team/busybox:1`;
    const client = new RegistryClient({ credentials: creds('bob', 'hunter2') });
    try {
      await store.importRootfs(busyboxTar, ref);
      const pushed = await store.push(ref, { client });
      expect(tokens.requests.some((r) => r.user === 'bob' && r.service === tokens.service && r.scopes.includes('repository:team/busybox:pull,push'))).toBe(true);
      const other = await ImageStore.open(join(work, 'other'));
      const pulled = await other.pull(ref, { client: new RegistryClient({ credentials: creds('bob', 'hunter2') }) });
      expect(pulled.digest).toBe(pushed.digest);
      expect(tokens.requests.at(-1)?.scopes).toEqual(['repository:team/busybox:pull']);
    } finally {
      client.close();
    }
  });

  test('a wrong password at the token endpoint is "unauthorized: incorrect username or password"', async () => {
    const client = new RegistryClient({ credentials: creds('bob', 'nope') });
    const err = await failure(store.pull(`${registry.addr}/team/busybox:1`, { client }));
    expect(err.kind).toBe('unauthorized');
    expect(err.message).toMatch(new RegExp(`^unauthorized: incorrect username or password for ${registry.addr} \\(token server: incorrect username or password\\)$`));
    client.close();
  });

  test('an anonymous token grants pull only: pushing is refused as unauthorized', async () => {
    const ref = `${registry.addr}/team/anon:1`;
    await store.importRootfs(busyboxTar, ref);
    const client = new RegistryClient();
    const err = await failure(store.push(ref, { client }));
    expect(err.kind).toBe('unauthorized');
    expect(err.message).toMatch(/^unauthorized: authentication required \(/);
    client.close();
  });
});

describe('credentials file', () => {
  test('login writes docker\'s config.json format with mode 0600, logout removes the entry', async () => {
    const path = join(work, 'conf', 'config.json');
    const store = new CredentialStore(path, []);
    await store.set('registry.local:5000', { username: 'u', password: 'p:w' });
    await store.set('docker.io', { username: 'hub', password: 'x' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const doc = JSON.parse((await import('node:fs')).readFileSync(path, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(doc.auths['registry.local:5000']?.auth).toBe(Buffer.from('u:p:w').toString('base64'));
    expect(Object.keys(doc.auths)).toContain('https://index.docker.io/v1/');
    expect(await store.get('registry.local:5000')).toEqual({ username: 'u', password: 'p:w' });
    expect(await store.get('docker.io')).toEqual({ username: 'hub', password: 'x' });
    expect(await store.remove('registry.local:5000')).toBe(true);
    expect(await store.get('registry.local:5000')).toBeUndefined();
    expect(await store.remove('registry.local:5000')).toBe(false);
  });

  test('docker\'s own file is read when tsswarm\'s has no entry, whatever spelling its key has', async () => {
    const docker = join(work, 'docker.json');
    writeFileSync(docker, JSON.stringify({ auths: { 'https://registry.local:5000/v2/': { auth: Buffer.from('d:pw').toString('base64') } }, credsStore: 'none' }));
    const store = new CredentialStore(join(work, 'missing.json'), [docker]);
    expect(await store.get('registry.local:5000')).toEqual({ username: 'd', password: 'pw' });
    expect(await store.get('other:5000')).toBeUndefined();
  });
});
