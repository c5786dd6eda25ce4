/**
 * npm run bench:raft — tsswarm's raft against etcd (Debian's etcd-server) on this machine, same run.
 *
 * Both: three members as separate processes on loopback, durable (fsynced) logs on disk, the same
 * election timeout (500 ms) and heartbeat (50 ms). A load client in its own process does 100-byte
 * puts at concurrency 1, 16, 64, 256 against the leader; then the leader is killed with SIGKILL five
 * times and the time to the next successful put is measured. Finally tsswarm's node RSS is read after
 * 100k writes in total (snapshots every 10k entries). Prints a table, then `RESULT {json}` last.
 *
 * Env: RAFT_BENCH_SCALE (default 1) scales the number of writes per level.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { KvClient } from '../testkit/raft/kv/kvclient.js';
import { KvStreamClient } from '../testkit/raft/kv/kvstream.js';
import { freePort, killHard, startKvNode, type NodeSpec } from '../testkit/raft/kv/procs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const KVNODE = join(HERE, '../testkit/raft/kv/kvnode.js');
const ELECTION_MS = 500;
const HEARTBEAT_MS = 50;
const SCALE = Number(process.env.RAFT_BENCH_SCALE ?? 1);
const LEVELS: [number, number][] = [
  [1, 1000],
  [16, 5000],
  [64, 15000],
  [256, 20000],
].map(([c, n]) => [c!, Math.max(c!, Math.round(n! * SCALE))]);
const FILL_TOTAL = Math.round(100_000 * Math.min(1, SCALE));
const VALUE = Buffer.alloc(100, 0x61);
/**
 * V8 flags for the raft node processes: a node holds ~30 MiB live after 100k writes, but V8's default
 * heuristics let the leader's RSS reach ~230 MiB. A young generation of 8 MiB semi-spaces and an old
 * generation grown by 20% at a time keep it near 135 MiB. (--optimize-for-size keeps it near 120 MiB
 * but doubles the leader's CPU per write: measured 205 vs 106 us with bench/raft-profile.ts.)
 * Override with RAFT_BENCH_NODE_FLAGS ('' for V8 defaults).
 */
const NODE_FLAGS = (process.env.RAFT_BENCH_NODE_FLAGS ?? '--max-semi-space-size=8 --heap-growing-percent=20').split(' ').filter(Boolean);

// ------------------------------------------------------------------ clients (one interface, two systems)

interface PutClient {
  put(key: string, timeoutMs: number): Promise<void>;
  close(): void;
}

const ETCD_PROTO = `
syntax = "proto3";
package etcdserverpb;
message ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
message PutRequest { bytes key = 1; bytes value = 2; int64 lease = 3; bool prev_kv = 4; }
message PutResponse { ResponseHeader header = 1; }
message StatusRequest {}
message StatusResponse { ResponseHeader header = 1; string version = 2; int64 dbSize = 3; uint64 leader = 4; uint64 raftIndex = 5; uint64 raftTerm = 6; }
`;
const etcdTypes = (() => {
  const root = protobuf.parse(ETCD_PROTO, { keepCase: true }).root;
  const t = (n: string): protobuf.Type => root.lookupType(`etcdserverpb.${n}`);
  return { PutRequest: t('PutRequest'), PutResponse: t('PutResponse'), StatusRequest: t('StatusRequest'), StatusResponse: t('StatusResponse') };
})();

/** A minimal etcd v3 gRPC client (KV.Put, Maintenance.Status) built from the public API's field numbers. */
class EtcdClient implements PutClient {
  private readonly c: grpc.Client;
  constructor(address: string) {
    this.c = new grpc.Client(address, grpc.credentials.createInsecure());
  }
  put(key: string, timeoutMs: number): Promise<void> {
    const T = etcdTypes;
    return new Promise((resolve, reject) => {
      this.c.makeUnaryRequest(
        '/etcdserverpb.KV/Put',
        (x: object) => Buffer.from(T.PutRequest.encode(T.PutRequest.create(x)).finish()),
        (b: Buffer) => T.PutResponse.decode(b),
        { key: Buffer.from(key), value: VALUE },
        { deadline: Date.now() + timeoutMs },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  status(timeoutMs = 1000): Promise<{ member: string; leader: string }> {
    const T = etcdTypes;
    return new Promise((resolve, reject) => {
      this.c.makeUnaryRequest(
        '/etcdserverpb.Maintenance/Status',
        (x: object) => Buffer.from(T.StatusRequest.encode(T.StatusRequest.create(x)).finish()),
        (b: Buffer) => T.StatusResponse.toObject(T.StatusResponse.decode(b), { longs: String }),
        {},
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err || !res) return reject(err ?? new Error('no status'));
          const r = res as { header?: { member_id?: string }; leader?: string };
          resolve({ member: r.header?.member_id ?? '0', leader: r.leader ?? '0' });
        },
      );
    });
  }
  close(): void {
    this.c.close();
  }
}

/** tsswarm's unary Put: one gRPC call per write, like etcd's KV.Put. */
class TsswarmUnaryPut implements PutClient {
  private readonly c: KvClient;
  constructor(address: string) {
    this.c = new KvClient([address]);
  }
  async put(key: string, timeoutMs: number): Promise<void> {
    await this.c.put(0, key, VALUE, timeoutMs);
  }
  close(): void {
    this.c.close();
  }
}

/**
 * tsswarm's PutStream: the same concurrent, individually acknowledged 100-byte puts, but the
 * client's concurrent requests share one stream (requests and answers batched per event-loop turn)
 * instead of one HTTP/2 stream per write.
 */
class TsswarmStreamPut implements PutClient {
  private readonly c: KvStreamClient;
  constructor(address: string) {
    this.c = new KvStreamClient(address);
  }
  async put(key: string, timeoutMs: number): Promise<void> {
    await this.c.put(key, VALUE, timeoutMs);
  }
  close(): void {
    this.c.close();
  }
}

function makeClient(kind: string, address: string): PutClient {
  if (kind === 'etcd') return new EtcdClient(address);
  return kind === 'tsswarm-unary' ? new TsswarmUnaryPut(address) : new TsswarmStreamPut(address);
}

// ------------------------------------------------------------------ load driver (runs in its own process)

interface LevelResult {
  conc: number;
  n: number;
  ops_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

async function driver(kind: string, address: string, conc: number, n: number, prefix: string): Promise<LevelResult> {
  const client = makeClient(kind, address);
  // warm the connection
  for (let i = 0; i < 20; i++) await client.put(`${prefix}-warm-${i}`, 5000).catch(() => {});
  const lat = new Float64Array(n);
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const s = performance.now();
      try {
        await client.put(`${prefix}-${i}`, 10_000);
      } catch {
        errors++;
      }
      lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  const secs = (performance.now() - t0) / 1000;
  client.close();
  const sorted = Array.from(lat).sort((a, b) => a - b);
  const pct = (p: number): number => +sorted[Math.min(n - 1, Math.floor((p / 100) * n))]!.toFixed(2);
  return { conc, n, ops_s: Math.round((n - errors) / secs), p50_ms: pct(50), p99_ms: pct(99), errors };
}

async function runDriver(kind: string, address: string, conc: number, n: number, prefix: string): Promise<LevelResult> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--driver', kind, address, String(conc), String(n), prefix], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`load driver exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as LevelResult;
}

// ------------------------------------------------------------------ clusters

interface Cluster {
  kind: string;
  addresses: string[];
  leader(): Promise<number>;
  kill(i: number): Promise<void>;
  restart(i: number): Promise<void>;
  pid(i: number): number;
  stop(): Promise<void>;
}

async function tsswarmCluster(root: string): Promise<Cluster> {
  const specs: NodeSpec[] = [];
  for (let id = 1; id <= 3; id++) specs.push({ id, port: await freePort(), dataDir: join(root, `tsswarm-${id}`) });
  const args = ['--tick-ms', String(HEARTBEAT_MS), '--election-ticks', String(ELECTION_MS / HEARTBEAT_MS), '--snapshot-every', '10000'];
  const procs: ChildProcess[] = await Promise.all(specs.map((s) => startKvNode(KVNODE, s, specs, args, NODE_FLAGS)));
  const addresses = specs.map((s) => `127.0.0.1:${s.port}`);
  const kv = new KvClient(addresses);
  const c: Cluster = {
    kind: 'tsswarm',
    addresses,
    async leader() {
      for (;;) {
        for (let i = 0; i < 3; i++) {
          const st = await kv.status(i, 300).catch(() => null);
          if (st?.role === 'leader') return i;
        }
        await sleep(20);
      }
    },
    kill: (i) => killHard(procs[i]!),
    async restart(i) {
      procs[i] = await startKvNode(KVNODE, specs[i]!, specs, args, NODE_FLAGS);
    },
    pid: (i) => procs[i]!.pid!,
    async stop() {
      kv.close();
      for (const p of procs) await killHard(p);
    },
  };
  return c;
}

async function etcdCluster(root: string): Promise<Cluster> {
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < 3; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const start = (i: number, state: string): ChildProcess => {
    const p = ports[i]!;
    const client = `http://127.0.0.1:${p.client}`;
    return spawn('etcd', [
      '--name', `m${i + 1}`, '--data-dir', join(root, `etcd-${i + 1}`),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', `http://127.0.0.1:${p.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
      '--initial-cluster', initial, '--initial-cluster-token', 'tsswarm-bench', '--initial-cluster-state', state,
      '--election-timeout', String(ELECTION_MS), '--heartbeat-interval', String(HEARTBEAT_MS),
      '--logger', 'zap', '--log-level', 'error',
    ], { stdio: ['ignore', 'ignore', 'ignore'] });
  };
  const procs = [0, 1, 2].map((i) => start(i, 'new'));
  const addresses = ports.map((p) => `127.0.0.1:${p.client}`);
  const clients = addresses.map((a) => new EtcdClient(a));
  const c: Cluster = {
    kind: 'etcd',
    addresses,
    async leader() {
      for (;;) {
        for (let i = 0; i < 3; i++) {
          const st = await clients[i]!.status(300).catch(() => null);
          if (st && st.leader !== '0' && st.member === st.leader) return i;
        }
        await sleep(20);
      }
    },
    kill: (i) => killHard(procs[i]!),
    async restart(i) {
      procs[i] = start(i, 'existing');
      await sleep(200);
    },
    pid: (i) => procs[i]!.pid!,
    async stop() {
      for (const cl of clients) cl.close();
      for (const p of procs) await killHard(p);
    },
  };
  // wait until a put succeeds
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await clients[0]!.put('bench-ready', 1000);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`etcd did not start: ${(e as Error).message}`);
      await sleep(200);
    }
  }
  return c;
}

/** Kill the leader, then time until a put on a survivor succeeds. */
async function failover(c: Cluster, runs: number): Promise<number[]> {
  const times: number[] = [];
  const probes = c.addresses.map((a) => makeClient(c.kind, a));
  for (let r = 0; r < runs; r++) {
    const l = await c.leader();
    const survivors = [0, 1, 2].filter((i) => i !== l);
    const t0 = performance.now();
    await c.kill(l);
    for (let k = 0; ; k++) {
      const s = survivors[k % 2]!;
      try {
        await probes[s]!.put(`failover-${r}-${k}`, 300);
        break;
      } catch {
        if (performance.now() - t0 > 30_000) throw new Error(`${c.kind}: no write within 30 s after killing the leader`);
        await sleep(10);
      }
    }
    times.push(performance.now() - t0);
    await c.restart(l);
    // let the restarted member catch up and heartbeats settle
    for (let k = 0; k < 100; k++) {
      if (await probes[l]!.put(`rejoin-${r}-${k}`, 500).then(() => true, () => false)) break;
      await sleep(100);
    }
    await sleep(1000);
  }
  for (const p of probes) p.close();
  return times;
}

function rssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? +(Number(m[1]) / 1024).toFixed(1) : NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : +s[Math.floor(s.length / 2)]!.toFixed(0);
};

function ensureEtcd(): void {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
    return;
  } catch {
    /* install below */
  }
  console.log('installing etcd-server (Debian) ...');
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server'], {
    stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--driver') {
    const [, , , kind, address, conc, n, prefix] = process.argv;
    const r = await driver(kind!, address!, Number(conc), Number(n), prefix!);
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  }
  if (!existsSync(KVNODE)) throw new Error(`${KVNODE} missing: run npm run build:ts first`);
  ensureEtcd();
  const root = mkdtempSync(join(tmpdir(), 'tsswarm-bench-raft-'));
  const clusters: Cluster[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of clusters) await c.stop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const ours = await tsswarmCluster(root);
    clusters.push(ours);
    const etcd = await etcdCluster(root);
    clusters.push(etcd);
    const results: Record<string, Record<string, LevelResult>> = { tsswarm: {}, etcd: {}, 'tsswarm-unary': {} };
    let oursWritten = 0;
    // alternate systems per level so background load on the machine hits both alike
    for (const [conc, n] of LEVELS) {
      for (const c of [ours, etcd]) {
        const l = await c.leader();
        const r = await runDriver(c.kind, c.addresses[l]!, conc, n, `c${conc}`);
        results[c.kind]![`c${conc}`] = r;
        if (c === ours) oursWritten += n + 20;
        console.log(`${c.kind.padEnd(8)} c=${String(conc).padEnd(4)} ${String(r.ops_s).padStart(6)} ops/s  p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  errors ${r.errors}`);
      }
      if (conc === 64) {
        // for reference: the same load through tsswarm's unary Put (one gRPC call per write, as etcd's)
        const l = await ours.leader();
        const r = await runDriver('tsswarm-unary', ours.addresses[l]!, conc, n, `u${conc}`);
        results['tsswarm-unary']![`c${conc}`] = r;
        oursWritten += n + 20;
        console.log(`tsswarm (unary Put) c=${conc} ${r.ops_s} ops/s  p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  errors ${r.errors}`);
      }
    }
    const failOurs = await failover(ours, 5);
    const failEtcd = await failover(etcd, 5);
    console.log(`failover (kill -9 leader -> next put), election ${ELECTION_MS} ms: tsswarm ${failOurs.map((x) => x.toFixed(0)).join(', ')} ms; etcd ${failEtcd.map((x) => x.toFixed(0)).join(', ')} ms`);
    // memory after 100k writes in total, snapshots on
    if (oursWritten < FILL_TOTAL) {
      const l = await ours.leader();
      await runDriver('tsswarm', ours.addresses[l]!, 64, FILL_TOTAL - oursWritten, 'fill');
    }
    await sleep(1000);
    const rss = [0, 1, 2].map((i) => rssMiB(ours.pid(i)));
    const etcdRss = [0, 1, 2].map((i) => rssMiB(etcd.pid(i)));
    console.log(`RSS after ${FILL_TOTAL} writes: tsswarm ${rss.join(' / ')} MiB; etcd (after ${oursWritten} writes) ${etcdRss.join(' / ')} MiB`);

    console.log('');
    console.log('| concurrency | tsswarm ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | ratio |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [conc] of LEVELS) {
      const a = results.tsswarm![`c${conc}`]!;
      const b = results.etcd![`c${conc}`]!;
      console.log(`| ${conc} | ${a.ops_s} | ${a.p50_ms} | ${a.p99_ms} | ${b.ops_s} | ${b.p50_ms} | ${b.p99_ms} | ${(a.ops_s / b.ops_s).toFixed(2)} |`);
    }
    console.log(`| failover median | ${median(failOurs)} ms | | | ${median(failEtcd)} ms | | | |`);
    const o64 = results.tsswarm!['c64']!;
    const e64 = results.etcd!['c64']!;
    const u64 = results['tsswarm-unary']!['c64']!;
    console.log(`| 64, tsswarm unary Put | ${u64.ops_s} | ${u64.p50_ms} | ${u64.p99_ms} | ${e64.ops_s} | ${e64.p50_ms} | ${e64.p99_ms} | ${(u64.ops_s / e64.ops_s).toFixed(2)} |`);
    const result = {
      tsswarm: results.tsswarm,
      etcd: results.etcd,
      node_flags: NODE_FLAGS.join(' '),
      election_timeout_ms: ELECTION_MS,
      heartbeat_ms: HEARTBEAT_MS,
      failover_ms: { tsswarm: failOurs.map((x) => +x.toFixed(0)), etcd: failEtcd.map((x) => +x.toFixed(0)) },
      failover_median_ms: { tsswarm: median(failOurs), etcd: median(failEtcd) },
      rss_mib_after_writes: { writes: FILL_TOTAL, tsswarm_max: Math.max(...rss), etcd_max: Math.max(...etcdRss) },
      tsswarm_client: 'Kv.PutStream (concurrent puts share one stream, each acknowledged after its own commit)',
      tsswarm_unary_c64: u64,
      ratio_vs_etcd_c64: +(o64.ops_s / e64.ops_s).toFixed(3),
      unary_ratio_vs_etcd_c64: +(u64.ops_s / e64.ops_s).toFixed(3),
      p99_ratio_vs_etcd_c64: +(o64.p99_ms / e64.p99_ms).toFixed(3),
    };
    await cleanup();
    clusters.length = 0;
    console.log(`RESULT ${JSON.stringify(result)}`);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

main().catch((e: unknown) => {
  console.error(`bench:raft failed: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
