/**
 * The tsswarm side of bench:pull, as a long-lived process of its own (like a daemon, its code warm
 * after the first pull): it runs inside the benchmark's network namespace, where the registry and
 * dockerd are, and its RSS is its own rather than the benchmark's.
 *
 * Reads lines "pull REF STORE_DIR" on stdin; for each, opens a store there (cold: the caller gives a
 * new dir), pulls REF through the ImageStore API and answers one JSON line
 * {seconds, rssBeforeMiB, rssPeakMiB} or {error}.
 */
import { createInterface } from 'node:readline';
import { ImageStore } from '../src/engine/images/store.js';
import { RegistryClient } from '../src/engine/images/registry/client.js';
import { peakRssMiB, resetPeakRss, rssMiB } from './proc-memory.js';

async function pullOnce(ref: string, storeDir: string): Promise<Record<string, number>> {
  const client = new RegistryClient();
  try {
    const rssBeforeMiB = rssMiB(process.pid);
    resetPeakRss(process.pid);
    const started = performance.now();
    const store = await ImageStore.open(storeDir);
    await store.pull(ref, { client });
    const seconds = (performance.now() - started) / 1000;
    return { seconds, rssBeforeMiB, rssPeakMiB: peakRssMiB(process.pid) };
  } finally {
    client.close();
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, ref, storeDir] = line.trim().split(/\s+/);
  if (cmd !== 'pull' || ref === undefined || storeDir === undefined) continue;
  const answer = await pullOnce(ref, storeDir).catch((err: unknown) => ({ error: String((err as Error).message ?? err) }));
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
