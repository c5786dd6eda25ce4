/**
 * Helpers for the image store's tests: temp dirs, the busybox rootfs, and hand-built OCI layouts
 * (so that tests control every byte: whiteouts, corrupt blobs, wrong diff_ids).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** The repository root, whether this module runs from testkit/ or dist/testkit/. */
export const REPO_ROOT = ((): string => {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tsswarm-test-'));
}

export function removeTempDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

export function busyboxRootfs(out: string): string {
  sh(join(REPO_ROOT, 'scripts/busybox-rootfs.sh'), [out]);
  return out;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A tar of `dir`'s contents (members "./..."), built by GNU tar. */
export function tarDir(dir: string, out: string, gzip = false): string {
  sh('tar', ['-C', dir, '--numeric-owner', '--xattrs', gzip ? '-czf' : '-cf', out, '.']);
  return out;
}

export interface LayoutLayer { file: string }

/**
 * Writes an OCI image layout to `dir` with the given layer tarballs (bottom first, tar or tar+gzip)
 * and config fields; returns the digests involved. `diffIds` overrides the computed ones.
 */
export function writeOciLayout(dir: string, layers: LayoutLayer[], opts: { tag?: string; config?: Record<string, unknown>; diffIds?: string[] } = {}): { configDigest: string; layerDigests: string[]; diffIds: string[] } {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const put = (data: Buffer): string => {
    const hex = sha256Hex(data);
    writeFileSync(join(dir, 'blobs/sha256', hex), data);
    return `sha256:${hex}`;
  };
  const layerDescs = layers.map((l) => {
    const data = readFileSync(l.file);
    const gz = data[0] === 0x1f && data[1] === 0x8b;
    const zstd = data.readUInt32LE(0) === 0xfd2fb528;
    const raw = gz ? gunzipSync(data) : zstd ? execFileSync('zstd', ['-dc', l.file], { maxBuffer: 1 << 30 }) : data;
    const suffix = gz ? '+gzip' : zstd ? '+zstd' : '';
    return { desc: { mediaType: `application/vnd.oci.image.layer.v1.tar${suffix}`, digest: put(data), size: data.length }, diffId: `sha256:${sha256Hex(raw)}` };
  });
  const diffIds = opts.diffIds ?? layerDescs.map((l) => l.diffId);
  const config = Buffer.from(JSON.stringify({
    created: '2026-01-01T00:00:00Z', architecture: 'amd64', os: 'linux',
    config: opts.config ?? { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
  const configDigest = put(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layerDescs.map((l) => l.desc),
  }));
  const manifestDigest = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' },
    }],
  }));
  return { configDigest, layerDigests: layerDescs.map((l) => l.desc.digest), diffIds };
}
