/**
 * Unpacked layers under <root>/layers/<diff_id hex>/, one directory per distinct layer, shared by every
 * image (and so every container) that has it. Keyed by diff_id rather than chain id: with overlayfs
 * whiteouts a layer's directory depends only on the layer itself, not on the layers below it.
 *
 * A layer is unpacked into a temp dir and renamed into place only when complete and verified, so a
 * directory at its final path is always a whole layer.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { hexOf, isDigest, type Digest } from './digest.js';
import { unpackLayer, type LayerInput, type UnpackedLayer, type UnpackOptions } from './layer-unpack.js';

export class LayerStore {
  readonly dir: string;

  constructor(root: string, private readonly tmp: () => string, private readonly log?: Logger) {
    this.dir = join(root, 'layers');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  path(diffId: Digest): string {
    return join(this.dir, hexOf(diffId));
  }

  async has(diffId: Digest): Promise<boolean> {
    return stat(this.path(diffId)).then((s) => s.isDirectory(), () => false);
  }

  /**
   * Unpacks the blob at `blob` (a file, or a stream being downloaded) as a layer. With `opts.diffId` its uncompressed content must hash to
   * it; without (a plain rootfs tarball has no config to say), it is stored under what it hashes to.
   */
  async unpack(blob: LayerInput, what: string, opts: UnpackOptions = {}): Promise<UnpackedLayer> {
    const work = this.tmp();
    await mkdir(work, { mode: 0o755 });
    const started = performance.now();
    try {
      const result = await unpackLayer(blob, work, what, opts);
      if (await this.has(result.diffId) || !(await this.moveIn(work, result.diffId))) {
        // Already there (the same content imported before, twice in one load, or by a concurrent
        // pull of another image that shares it): keep the first.
        await rm(work, { recursive: true, force: true });
      }
      this.log?.debug({ layer: result.diffId, compression: result.compression, bytes: result.size, ms: Math.round(performance.now() - started) }, 'layer unpacked');
      return result;
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      throw err;
    }
  }

  /** Renames a complete layer into place; false when another got there first (its dir is not empty). */
  private async moveIn(work: string, diffId: Digest): Promise<boolean> {
    try {
      await rename(work, this.path(diffId));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw err;
    }
  }

  async list(): Promise<{ layers: Digest[]; stray: string[] }> {
    const names = await readdir(this.dir);
    const layers: Digest[] = [];
    const stray: string[] = [];
    for (const n of names) {
      const d = `sha256:${n}`;
      if (isDigest(d)) layers.push(d);
      else stray.push(join(this.dir, n));
    }
    return { layers, stray };
  }

  async remove(diffId: Digest): Promise<void> {
    // Rename first so that a crash half-way through rm leaves a temp dir (cleared on open), never a
    // half-deleted layer at a path an image still points to.
    const doomed = this.tmp();
    try {
      await rename(this.path(diffId), doomed);
    } catch {
      return;
    }
    await rm(doomed, { recursive: true, force: true });
  }
}
