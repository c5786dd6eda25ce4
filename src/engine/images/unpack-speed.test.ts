/**
 * How fast a layer unpacks: our path (hash + whiteout rewrite + GNU tar) against plain GNU tar and
 * against node-tar fed from the same hashing stream, on the busybox rootfs and on a larger synthetic
 * layer (many small files plus a few large ones). Slow and noisy, so only with TSSWARM_MEASURE_UNPACK=1
 * (TMPDIR=/dev/shm measures the CPU side without the disk):
 *
 *   TSSWARM_MEASURE_UNPACK=1 npx vitest run src/engine/images/unpack-speed.test.ts
 */
import { createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { x as nodeTarExtract } from 'tar';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HashingStream } from './digest.js';
import { ImageStore } from './index.js';
import { unpackLayer } from './layer-unpack.js';
import { busyboxRootfs, makeTempDir, removeTempDir, sh, tarDir } from '../../../testkit/images.js';

const RUNS = 3;

describe.runIf(process.env.TSSWARM_MEASURE_UNPACK === '1')('unpack speed', () => {
  let dir: string;
  beforeAll(() => { dir = makeTempDir(); });
  afterAll(() => removeTempDir(dir));

  async function median(run: (dest: string) => Promise<void>): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const dest = join(dir, `out-${i}`);
      mkdirSync(dest);
      const t = performance.now();
      await run(dest);
      times.push(performance.now() - t);
      rmSync(dest, { recursive: true, force: true });
    }
    return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
  }

  async function measure(label: string, file: string): Promise<void> {
    const mb = statSync(file).size / 1e6;
    const ours = await median(async (dest) => { await unpackLayer(file, dest, 'layer'); });
    const gnu = await median(async (dest) => { sh('tar', ['-xpf', file, '--numeric-owner', '--xattrs', '-C', dest]); });
    const nodeTar = await median(async (dest) => {
      await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), new HashingStream(), nodeTarExtract({ cwd: dest, preserveOwner: true }));
    });
    const row = (name: string, ms: number): string => `${name.padEnd(28)} ${ms.toFixed(0).padStart(7)} ms ${(mb / (ms / 1000)).toFixed(0).padStart(6)} MB/s`;
    console.log([`${label} (${mb.toFixed(1)} MB)`, row('ours (hash+rewrite+GNU tar)', ours), row('GNU tar alone', gnu), row('node-tar (+hash)', nodeTar)].join('\n'));
    expect(ours).toBeGreaterThan(0);
  }

  test('busybox rootfs', async () => {
    await measure('busybox rootfs', busyboxRootfs(join(dir, 'busybox.tar')));
  });

  test('whole import of the busybox rootfs through the store', async () => {
    const tarFile = busyboxRootfs(join(dir, 'busybox.tar'));
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const store = await ImageStore.open(join(dir, `store-${i}`));
      const t = performance.now();
      await store.importRootfs(tarFile, 'busybox');
      times.push(performance.now() - t);
    }
    console.log(`ImageStore.importRootfs(busybox): ${times.map((t) => t.toFixed(0)).join(' / ')} ms`);
  });

  test('synthetic layer: 10k small files and 2 x 64 MiB', async () => {
    const src = join(dir, 'synthetic');
    for (let d = 0; d < (Number(process.env.TSSWARM_MEASURE_DIRS) || 10); d++) {
      mkdirSync(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 1000; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(150));
    }
    const big = Buffer.alloc(64 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    for (let b = 0; b < 2; b++) writeFileSync(join(src, `big${b}`), big);
    const plain = tarDir(src, join(dir, 'synthetic.tar'));
    rmSync(src, { recursive: true, force: true });
    await measure('synthetic layer, tar', plain);
    sh('sh', ['-c', `gzip -1 -c ${plain} > ${plain}.gz`]);
    await measure('synthetic layer, tar+gzip', `${plain}.gz`);
  }, 600_000);
});
