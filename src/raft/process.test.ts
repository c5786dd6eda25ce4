import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvClient as KvClientT } from '../../testkit/raft/kv/kvclient.js';
import type { KvStreamClient as KvStreamClientT } from '../../testkit/raft/kv/kvstream.js';
import { freePort, killHard, startKvNode, type NodeSpec } from '../../testkit/raft/kv/procs.js';

/**
 * Three raft node processes over gRPC on loopback, each with its own LevelDB. Nodes are killed with
 * SIGKILL at random moments and restarted from their directories while clients write; afterwards no
 * acknowledged write may be missing and all replicas must converge to the same state.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const CHAOS_MS = Number(process.env.RAFT_PROC_CHAOS_MS ?? 15_000);

let dir = '';
let script = '';
let out = '';
let specs: NodeSpec[] = [];
const procs = new Map<number, ChildProcess>();
let client: KvClientT | null = null;
let streams: KvStreamClientT[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsswarm-test-raftproc-'));
  // compile the node process from the sources (child processes cannot run TypeScript directly);
  // the output stays inside the repository so its imports resolve node_modules
  out = join(ROOT, '.tmp', `raftproc-${process.pid}`);
  execFileSync(
    join(ROOT, 'node_modules/.bin/tsc'),
    ['--ignoreConfig', '--outDir', out, '--rootDir', ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
      '--target', 'ES2022', '--skipLibCheck', '--types', 'node', '--strict', 'testkit/raft/kv/kvnode.ts'],
    { cwd: ROOT, stdio: 'inherit' },
  );
  script = join(out, 'testkit/raft/kv/kvnode.js');
}, 60_000);

afterAll(async () => {
  client?.close();
  for (const s of streams) s.close();
  for (const p of procs.values()) await killHard(p).catch(() => {});
  procs.clear();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (out) rmSync(out, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const NODE_ARGS = ['--tick-ms', '50', '--election-ticks', '10', '--snapshot-every', '300', '--snapshot-keep', '50'];

async function start(spec: NodeSpec): Promise<void> {
  procs.set(spec.id, await startKvNode(script, spec, specs, NODE_ARGS));
}

describe('raft over real processes', () => {
  it('loses no acknowledged write across kill -9 and restarts, and converges', async () => {
    const { KvClient } = await import('../../testkit/raft/kv/kvclient.js');
    const { KvStreamClient } = await import('../../testkit/raft/kv/kvstream.js');
    specs = [];
    for (let id = 1; id <= 3; id++) specs.push({ id, port: await freePort(), dataDir: join(dir, `n${id}`) });
    await Promise.all(specs.map(start));
    client = new KvClient(specs.map((s) => `127.0.0.1:${s.port}`));
    const c = client;
    // half the writers use the pipelined PutStream: its acknowledgements must be just as durable
    streams = specs.map((s) => new KvStreamClient(`127.0.0.1:${s.port}`));
    const put = (w: number, key: string, value: string): Promise<number> => {
      const node = Math.floor(Math.random() * 3);
      return w % 2 === 0 ? c.put(node, key, Buffer.from(value), 2000) : streams[node]!.put(key, Buffer.from(value), 2000);
    };

    const acked = new Map<string, string>();
    let attempts = 0;
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        const value = `${key}-${Math.random().toString(36).slice(2)}`;
        attempts++;
        try {
          await put(w, key, value);
          acked.set(key, value);
        } catch {
          await sleep(20); // unacknowledged: may or may not be in the log
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));

    let kills = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < CHAOS_MS) {
      await sleep(300 + Math.random() * 1500);
      const victims = Math.random() < 0.2 ? 2 : 1; // sometimes the majority goes down too
      const ids = [1, 2, 3].sort(() => Math.random() - 0.5).slice(0, victims);
      for (const id of ids) {
        await killHard(procs.get(id)!);
        kills++;
      }
      await sleep(100 + Math.random() * 1200);
      for (const id of ids) await start(specs.find((s) => s.id === id)!);
    }
    stop = true;
    await Promise.all(writers);
    expect(kills).toBeGreaterThan(3);
    expect(acked.size).toBeGreaterThan(50);

    // convergence: same applied index and state digest everywhere, with everything committed
    let last = '';
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const st = await Promise.all([0, 1, 2].map((i) => c.status(i)));
        last = JSON.stringify(st);
        const same = st.every((s) => s.applied === st[0]!.applied && s.digest === st[0]!.digest && s.commit === s.lastIndex);
        if (same && st.some((s) => s.role === 'leader')) break;
      } catch {
        /* a node may still be starting */
      }
      if (Date.now() > deadline) throw new Error(`replicas did not converge: ${last}`);
      await sleep(200);
    }

    // no acknowledged write lost: a linearizable read on every node returns it
    const keys = [...acked.keys()];
    for (let node = 0; node < 3; node++) {
      let missing = 0;
      for (let i = 0; i < keys.length; i += 64) {
        const got = await Promise.all(keys.slice(i, i + 64).map((k) => c.get(node, k, 5000)));
        got.forEach((v, j) => {
          if (v?.toString() !== acked.get(keys[i + j]!)) missing++;
        });
      }
      expect(missing, `node ${node + 1}: acknowledged writes missing`).toBe(0);
    }
    console.log(`raft processes: ${kills} kill -9, ${acked.size} acknowledged of ${attempts} writes, converged: ${last}`);
  }, 180_000);
});
