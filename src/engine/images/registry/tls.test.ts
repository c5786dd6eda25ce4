import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LookupFunction } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from '../store.js';
import { busyboxRootfs, makeTempDir, removeTempDir } from '../../../../testkit/images.js';
import { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { startRegistry, testCertificates, type RunningRegistry } from '../../../../testkit/registry.js';

/**
 * Registries under a name that is not loopback (so that docker's rules for real registries apply),
 * resolved to 127.0.0.1 by the transport's lookup: all traffic stays on loopback.
 */
const NAME = 'registry.tsswarm.test';
const toLoopback: LookupFunction = (_host, opts, cb) => {
  if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
};

let shared: string;
let busyboxTar: string;
let tlsRegistry: RunningRegistry;
let plainRegistry: RunningRegistry;
let ca: string;
let work: string;
let store: ImageStore;

beforeAll(async () => {
  shared = makeTempDir();
  busyboxTar = busyboxRootfs(join(shared, 'busybox.tar'));
  const certs = testCertificates(shared, NAME);
  ca = certs.ca;
  mkdirSync(join(shared, 'tls'));
  tlsRegistry = await startRegistry(join(shared, 'tls'), { tls: { certificate: certs.certificate, key: certs.key } });
  mkdirSync(join(shared, 'plain'));
  plainRegistry = await startRegistry(join(shared, 'plain'));
});
afterAll(async () => {
  await tlsRegistry?.stop();
  await plainRegistry?.stop();
  removeTempDir(shared);
});
beforeEach(async () => {
  work = makeTempDir();
  store = await ImageStore.open(join(work, 'images'));
});
afterEach(() => removeTempDir(work));

const named = (r: RunningRegistry): string => `${NAME}:${r.addr.split(':')[1]}`;

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

describe('TLS and plain HTTP, as docker decides them', () => {
  test('a registry whose CA is in certs.d/HOST:PORT/ca.crt is trusted; without it the error says where to put it', async () => {
    const registry = named(tlsRegistry);
    const ref = `${registry}/secure/busybox:1`;
    await store.importRootfs(busyboxTar, ref);
    const certsDir = join(work, 'certs.d');
    const untrusting = new RegistryClient({ lookup: toLoopback, certsDirs: [certsDir] });
    const err = await failure(store.push(ref, { client: untrusting }));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(new RegExp(`TLS certificate not trusted \\(.*\\); put its CA in certs\\.d/${registry.replace(/\./g, '\\.')}/ca\\.crt$`));
    untrusting.close();

    mkdirSync(join(certsDir, registry), { recursive: true });
    copyFileSync(ca, join(certsDir, registry, 'ca.crt'));
    const client = new RegistryClient({ lookup: toLoopback, certsDirs: [certsDir] });
    try {
      const pushed = await store.push(ref, { client });
      const pulled = await (await ImageStore.open(join(work, 'other'))).pull(ref, { client });
      expect(pulled.digest).toBe(pushed.digest);
    } finally {
      client.close();
    }
  });

  test('a plain-HTTP registry is refused unless it is an insecure registry', async () => {
    const registry = named(plainRegistry);
    const ref = `${registry}/plain/busybox:1`;
    await store.importRootfs(busyboxTar, ref);
    const strict = new RegistryClient({ lookup: toLoopback, certsDirs: [] });
    const err = await failure(store.push(ref, { client: strict }));
    expect(err.message).toMatch(new RegExp(`answered in plain HTTP to HTTPS; if it is meant to be plain HTTP, add ${registry.replace(/\./g, '\\.')} to the insecure registries$`));
    strict.close();
    const lenient = new RegistryClient({ lookup: toLoopback, certsDirs: [], insecureRegistries: [registry] });
    try {
      const pushed = await store.push(ref, { client: lenient });
      expect(pushed.reference).toBe(ref);
    } finally {
      lenient.close();
    }
  });
});
