import { describe, expect, test } from 'vitest';
import { ImageError } from '../errors.js';
import { parseChallenges } from './challenge.js';
import { registryOfKey } from './credentials.js';
import { localName, parseRemoteReference } from './remote-reference.js';
import { Transport } from './transport.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('remote references, as docker reads them', () => {
  test.each([
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'docker.io/library/busybox:latest', 'busybox:latest', 'busybox'],
    ['demo/web:1.4', 'docker.io', 'demo/web', '1.4', undefined, 'docker.io/demo/web:1.4', 'demo/web:1.4', 'demo/web'],
    ['docker.io/library/busybox:1', 'docker.io', 'library/busybox', '1', undefined, 'docker.io/library/busybox:1', 'busybox:1', 'busybox'],
    ['host:5000/a/b:tag', 'host:5000', 'a/b', 'tag', undefined, 'host:5000/a/b:tag', 'host:5000/a/b:tag', 'host:5000/a/b'],
    ['localhost/x', 'localhost', 'x', 'latest', undefined, 'localhost/x:latest', 'localhost/x:latest', 'localhost/x'],
    [`busybox@${D}`, 'docker.io', 'library/busybox', undefined, D, `docker.io/library/busybox@${D}`, undefined, 'busybox'],
    [`r.io/a:1@${D}`, 'r.io', 'a', '1', D, `r.io/a:1@${D}`, undefined, 'r.io/a'],
  ])('%s', (input, registry, repository, tag, digest, full, localTag, local) => {
    const r = parseRemoteReference(input);
    expect(r).toEqual({ registry, repository, full, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}), ...(localTag ? { localTag } : {}) });
    // The store's name for the repository: what `image ls` shows and what repo digests are keyed by.
    expect(localName(r.registry, r.repository)).toBe(local);
  });

  test('a malformed digest or name is refused in one line', () => {
    expect(() => parseRemoteReference('busybox@sha256:xyz')).toThrow(/digest must be sha256:<64 hex digits>/);
    expect(() => parseRemoteReference('Bad/Name')).toThrow(ImageError);
  });
});

describe('WWW-Authenticate challenges', () => {
  test('bearer with quoted parameters, commas inside quotes and escapes', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
    expect(parseChallenges('Basic realm="say \\"hi\\""')).toEqual([{ scheme: 'basic', params: { realm: 'say "hi"' } }]);
  });

  test('several challenges in one header', () => {
    expect(parseChallenges('Bearer realm="r", error="invalid_token", Basic realm="b"').map((c) => c.scheme)).toEqual(['bearer', 'basic']);
  });
});

describe('which registries may be plain HTTP', () => {
  test('loopback and configured insecure registries (name, name:port, CIDR), nothing else', () => {
    const t = new Transport({ insecureRegistries: ['registry.lan:5000', 'plain.lan', '10.1.0.0/16'] });
    for (const r of ['127.0.0.1:5000', 'localhost:5000', '[::1]:5000', 'registry.lan:5000', 'plain.lan:443', '10.1.2.3:5000']) expect(t.isInsecure(r), r).toBe(true);
    for (const r of ['registry.lan:5001', 'docker.io', '10.2.0.1:5000', 'example.com']) expect(t.isInsecure(r), r).toBe(false);
  });

  test('credential keys in any of docker\'s spellings name the same registry', () => {
    expect(registryOfKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(registryOfKey('http://host:5000/v2/')).toBe('host:5000');
    expect(registryOfKey('host:5000')).toBe('host:5000');
  });
});
