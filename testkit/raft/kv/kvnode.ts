/**
 * A raft node process serving the test/benchmark key-value service.
 *   node kvnode.js --id 1 --addr 127.0.0.1:PORT --data DIR --peers 1=127.0.0.1:P1,2=...,3=...
 *     [--tick-ms 100] [--election-ticks 10] [--snapshot-every 10000] [--snapshot-keep 1000]
 * Prints "READY <port>" on stdout once serving.
 */
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../../src/log.js';
import { RaftNode } from '../../../src/raft/node.js';
import { serverOptions } from '../../../src/raft/transport/grpc.js';
import { kvService } from './kvcodec.js';
import { BinaryKv } from './kvmachine.js';

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : def;
  if (v === undefined) throw new Error(`missing --${name}`);
  return v;
}

async function main(): Promise<void> {
  const id = Number(arg('id'));
  const addr = arg('addr');
  const peers = new Map<number, string>();
  for (const p of arg('peers').split(',')) {
    const [k, v] = p.split('=');
    peers.set(Number(k), v!);
  }
  const logger = createLogger(`raft-${id}`, process.env.TSSWARM_LOG_LEVEL ?? 'warn');
  const server = new grpc.Server(serverOptions());
  const kv = new BinaryKv();
  const node = new RaftNode({
    id, address: addr, dataDir: arg('data'), initialMembers: peers, stateMachine: kv, server,
    tickMs: Number(arg('tick-ms', '100')), electionTicks: Number(arg('election-ticks', '10')),
    heartbeatTicks: Number(arg('heartbeat-ticks', '1')), snapshotEvery: Number(arg('snapshot-every', '10000')),
    snapshotKeep: Number(arg('snapshot-keep', '1000')),
    log: (level, msg) => logger[level](msg),
  });
  server.addService(kvService(), {
    put: (call: grpc.ServerUnaryCall<{ key: string; value: Buffer }, object>, cb: grpc.sendUnaryData<object>) => {
      node.propose(BinaryKv.encodePut(call.request.key, call.request.value)).then(
        (index) => cb(null, { index }),
        (e: Error) => cb({ code: grpc.status.UNAVAILABLE, message: e.message }),
      );
    },
    putStream: (call: grpc.ServerDuplexStream<PutBatch, PutAnswers>) => servePutStream(node, call),
    get: (call: grpc.ServerUnaryCall<{ key: string }, object>, cb: grpc.sendUnaryData<object>) => {
      node.read().then(
        () => {
          const v = kv.get(call.request.key);
          cb(null, v ? { found: true, value: v } : { found: false });
        },
        (e: Error) => cb({ code: grpc.status.UNAVAILABLE, message: e.message }),
      );
    },
    status: (call: grpc.ServerUnaryCall<{ noDigest?: boolean }, object>, cb: grpc.sendUnaryData<object>) => {
      const s = node.status();
      cb(null, {
        id, role: s.role, term: s.term, leader: s.lead, commit: s.commit, applied: s.appliedByNode,
        lastIndex: s.lastIndex, digest: call.request.noDigest ? '' : kv.digest(), keys: kv.map.size,
        ...memory(),
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  await node.start();
  process.stdout.write(`READY ${port}\n`);
  const shutdown = (): void => {
    void node.stop().finally(() => {
      server.forceShutdown();
      process.exit(0);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

interface PutBatch {
  puts: { key: string; value: Buffer }[];
  ids: number[];
}
interface PutAnswers {
  ids: number[];
  indexes: number[];
  failedIds: number[];
  errors: string[];
}

/** Each put is proposed on its own; answers that accumulate within one turn go back as one message. */
function servePutStream(node: RaftNode, call: grpc.ServerDuplexStream<PutBatch, PutAnswers>): void {
  let out: PutAnswers | null = null;
  const pending = (): PutAnswers => {
    if (!out) {
      out = { ids: [], indexes: [], failedIds: [], errors: [] };
      setImmediate(() => {
        const a = out!;
        out = null;
        if (!call.cancelled) call.write(a);
      });
    }
    return out;
  };
  call.on('data', (b: PutBatch) => {
    const n = Math.min(b.puts.length, b.ids.length);
    for (let i = 0; i < n; i++) {
      const id = b.ids[i]!;
      const put = b.puts[i]!;
      node.propose(BinaryKv.encodePut(put.key, put.value)).then(
        (index) => {
          const a = pending();
          a.ids.push(id);
          a.indexes.push(index);
        },
        (e: Error) => {
          const a = pending();
          a.failedIds.push(id);
          a.errors.push(e.message);
        },
      );
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => {});
}

function memory(): { rssBytes: number; heapUsedBytes: number; externalBytes: number } {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external };
}

main().catch((e: unknown) => {
  process.stderr.write(`kvnode: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
