import { describe, expect, it } from 'vitest';
import { ImageDistribution } from './distribution.js';
import type { PullEvent } from './registry/progress.js';
import type { ImageStore, PullResult } from './store.js';

/** A store whose pulls take as long as the test says, counting them: the registry is not the point here. */
function countingStore() {
  const pulls: { ref: string; finish: () => void; progress: (e: PullEvent) => void }[] = [];
  const store = {
    resolve: () => undefined,
    pull: (ref: string, opts: { onProgress?: (e: PullEvent) => void }) => new Promise<PullResult>((resolve) => {
      pulls.push({
        ref,
        progress: (e) => opts.onProgress?.(e),
        finish: () => resolve({ image: { id: 'sha256:1', refs: [ref], layers: [], config: {}, created: '', size: 0 }, reference: ref, digest: 'sha256:2', status: 'Downloaded' } as unknown as PullResult),
      });
    }),
  };
  return { store: store as unknown as ImageStore, pulls };
}

describe('ImageDistribution', () => {
  it('shares one transfer among the pulls of one image that overlap, and each sees its progress', async () => {
    const { store, pulls } = countingStore();
    const d = new ImageDistribution({ store });
    const seen: string[][] = [[], [], []];
    const all = ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'].map((ref, i) => d.pull(ref, { onProgress: (e) => { if (e.type === 'layer') seen[i]!.push(e.status); } }));
    await new Promise((r) => setImmediate(r));
    expect(pulls).toHaveLength(1);
    pulls[0]!.progress({ type: 'layer', id: 'abc', digest: 'sha256:3' as never, status: 'Pull complete' });
    pulls[0]!.finish();
    const results = await Promise.all(all);
    expect(results.map((r) => r.digest)).toEqual(['sha256:2', 'sha256:2', 'sha256:2']);
    expect(seen).toEqual([['Pull complete'], ['Pull complete'], ['Pull complete']]);
    // Once it is over, the next pull is a transfer of its own (the tag may have moved).
    void d.pull('busybox');
    await new Promise((r) => setImmediate(r));
    expect(pulls).toHaveLength(2);
    d.close();
  });

  it('pulls another image in a transfer of its own', async () => {
    const { store, pulls } = countingStore();
    const d = new ImageDistribution({ store });
    void d.pull('busybox');
    void d.pull('127.0.0.1:5000/shop/web:1');
    await new Promise((r) => setImmediate(r));
    expect(pulls.map((p) => p.ref)).toEqual(['busybox', '127.0.0.1:5000/shop/web:1']);
    d.close();
  });
});
