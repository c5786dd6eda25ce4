/**
 * Real parts for the registry client's tests: Debian's docker-registry (CNCF distribution 2.8) started
 * on a free loopback port with its storage in a temp dir, optionally behind htpasswd or token auth
 * (or, for cluster tests, on a test host's address inside its network namespace, and what its access
 * log says it served);
 * a token server that signs JWTs the registry trusts; and OCI layouts made with umoci and pushed with
 * skopeo. Every process is started here and stopped by its PID.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sh } from './images.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RunningRegistry {
  /** "127.0.0.1:PORT", or the address it was given */
  addr: string;
  pid: number;
  stop(): Promise<void>;
}

import { freePort } from './ports.js';

export { freePort };

export interface RegistryAuth {
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { certificate: string; key: string };
  htpasswd?: string;
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

/**
 * Where a registry listens when not on a free loopback port: `addr` ("IP:PORT") inside the network
 * namespace `/run/netns/<netns>` (entered with `nsenter --net`, which execs the registry: the PID is
 * the registry's own).
 */
export interface RegistryPlace {
  netns: string;
  addr: string;
}

/** Starts a registry in `dir` (config, storage and log go there) and waits until it answers. */
export async function startRegistry(dir: string, auth: RegistryAuth = {}, place?: RegistryPlace): Promise<RunningRegistry> {
  const addr = place?.addr ?? `127.0.0.1:${await freePort()}`;
  const lines = [
    'version: 0.1',
    'log:', '  level: warn',
    'storage:', `  filesystem:`, `    rootdirectory: ${join(dir, 'storage')}`, '  delete:', '    enabled: true',
    'http:', `  addr: ${addr}`,
  ];
  if (auth.tls) lines.push('  tls:', `    certificate: ${auth.tls.certificate}`, `    key: ${auth.tls.key}`);
  if (auth.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: tsswarm-test', `    path: ${auth.htpasswd}`);
  if (auth.token) {
    const t = auth.token;
    lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCertBundle}`);
  }
  const config = join(dir, 'registry.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const log = openSync(join(dir, 'registry.log'), 'a');
  const [cmd, args] = place ? ['nsenter', [`--net=/run/netns/${place.netns}`, '--', REGISTRY_BIN, 'serve', config]] : [REGISTRY_BIN, ['serve', config]];
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', log, log] });
  const pid = child.pid as number;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    if (await (place ? answersIn(place.netns, addr, auth.tls !== undefined) : answers(addr, auth.tls !== undefined))) return { addr, pid, stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`docker-registry did not start on ${addr}: ${readFileSync(join(dir, 'registry.log'), 'utf8').slice(-2000)}`);
}

function answers(addr: string, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (res: http.IncomingMessage): void => { res.resume(); resolve(true); };
    const req = tls ? https.get(`https://${addr}/v2/`, { rejectUnauthorized: false }, done) : http.get(`http://${addr}/v2/`, done);
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => { req.destroy(); resolve(false); });
  });
}

/** The same probe from inside a network namespace (the root namespace cannot reach a test host's address). */
function answersIn(netns: string, addr: string, tls: boolean): Promise<boolean> {
  const url = `${tls ? 'https' : 'http'}://${addr}/v2/`;
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=/run/netns/${netns}`, '--', 'curl', '-s', '-k', '-o', '/dev/null', '-m', '1', url], (err) => resolve(!err));
  });
}

/** What a registry's access log says it answered: requests, and the body bytes of its 2xx GETs. */
export interface RegistryTraffic {
  requests: number;
  /** body bytes of successful GETs (manifests and blobs) */
  bytesServed: number;
  /** of which blobs (layers and configs) */
  blobBytes: number;
  /** bytes served per client address */
  byClient: Record<string, number>;
}

/**
 * Reads the access log in `dir`/registry.log (distribution writes one combined-log line per
 * request, whatever its log level): `IP - - [time] "GET /v2/... HTTP/1.1" 200 1234 "" "agent"`.
 */
export function registryTraffic(dir: string): RegistryTraffic {
  const out: RegistryTraffic = { requests: 0, bytesServed: 0, blobBytes: 0, byClient: {} };
  let text = '';
  try { text = readFileSync(join(dir, 'registry.log'), 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    const m = /^(\S+) \S+ \S+ \[[^\]]*\] "(\w+) (\S+) [^"]*" (\d{3}) (\d+|-)/.exec(line);
    if (!m) continue;
    out.requests++;
    const [, client, method, path, status, size] = m as unknown as [string, string, string, string, string, string];
    const bytes = size === '-' ? 0 : Number(size);
    if (method !== 'GET' || !status.startsWith('2')) continue;
    out.bytesServed += bytes;
    if (path.includes('/blobs/')) out.blobBytes += bytes;
    out.byClient[client] = (out.byClient[client] ?? 0) + bytes;
  }
  return out;
}

/**
 * A CA and a server certificate it signed for `name` (a DNS name), made with openssl in `dir`.
 */
export function testCertificates(dir: string, name: string): { ca: string; certificate: string; key: string } {
  const f = (n: string): string => join(dir, n);
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }); };
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=tsswarm test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', `/CN=${name}`);
  writeFileSync(f('san.ext'), `subjectAltName=DNS:${name}\n`);
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('san.ext'));
  return { ca: f('ca.crt'), certificate: f('server.crt'), key: f('server.key') };
}

/** An htpasswd file with one bcrypt entry (as the registry requires), made by apache2-utils' htpasswd. */
export function htpasswdFile(path: string, user: string, password: string): string {
  sh('htpasswd', ['-Bbc', path, user, password]);
  return path;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
  /** Every request's scopes and user, in order. */
  requests: { scopes: string[]; user: string | undefined; service: string | null }[];
  close(): Promise<void>;
}

/**
 * The token endpoint of the distribution spec: checks Basic credentials, grants what was asked (all
 * of it to the one user, pull only to anonymous), and signs a JWT with a key whose certificate the
 * registry trusts. The registry finds the key by `kid`, libtrust's fingerprint of the public key.
 */
export async function startTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tsswarm-test-token'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyFile));
  const kid = libtrustKeyId(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const service = 'tsswarm-test-registry';
  const issuer = 'tsswarm-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const [u, p] = basic ? Buffer.from(basic[1] as string, 'base64').toString().split(':') : [];
    requests.push({ scopes, user: u, service: url.searchParams.get('service') });
    if (basic && (u !== user || p !== password)) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const access = scopes.map((s) => {
      const [type, name, actions] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)];
      return { type, name, actions: basic ? actions.split(',') : actions.split(',').filter((a) => a === 'pull') };
    });
    const now = Math.floor(Date.now() / 1000);
    const token = jwt({ alg: 'RS256', typ: 'JWT', kid }, { iss: issuer, sub: u ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access }, key);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`, service, issuer, rootCertBundle: certFile, requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function jwt(header: object, claims: object, key: ReturnType<typeof createPrivateKey>): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** libtrust's key id: base32 of the first 240 bits of sha256(SPKI DER), in groups of 4 joined by ':'. */
function libtrustKeyId(spki: Buffer): string {
  const bytes = createHash('sha256').update(spki).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i + 5 <= bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return (out.match(/.{4}/g) ?? []).join(':');
}

/**
 * A two-layer OCI layout made by umoci: the busybox rootfs, then a layer that adds /etc/greeting and
 * deletes /etc/image-marker (a whiteout), with a config. The second layer is a GNU tar given to
 * `umoci raw add-layer`: Debian's umoci 0.4.7 writes `insert`s of single files as tars cut short.
 */
export function umociImage(dir: string, rootfsDir: string, work: string): string {
  sh('umoci', ['init', '--layout', dir]);
  sh('umoci', ['new', '--image', `${dir}:latest`]);
  sh('umoci', ['insert', '--image', `${dir}:latest`, rootfsDir, '/']);
  const top = join(work, 'top-layer');
  mkdirSync(join(top, 'etc'), { recursive: true });
  writeFileSync(join(top, 'etc/greeting'), 'hello from the registry\n');
  writeFileSync(join(top, 'etc/.wh.image-marker'), '');
  sh('tar', ['-C', top, '--numeric-owner', '--owner=0', '--group=0', '-cf', join(work, 'top-layer.tar'), 'etc']);
  sh('umoci', ['raw', 'add-layer', '--image', `${dir}:latest`, join(work, 'top-layer.tar')]);
  sh('umoci', ['config', '--image', `${dir}:latest`, '--config.env', 'GREETING=hi', '--config.cmd', '/bin/sh', '--config.workingdir', '/tmp']);
  return dir;
}

/** skopeo copy to the plain-HTTP test registry. */
export function skopeoCopy(from: string, to: string, extra: string[] = []): void {
  sh('skopeo', ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, from, to]);
}

/** The digest skopeo computes for what a reference names (the manifest as the registry serves it). */
export function skopeoDigest(ref: string): string {
  const out = JSON.parse(sh('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])) as { Digest: string };
  return out.Digest;
}
