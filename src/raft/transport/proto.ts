import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Finds proto/raft.proto from both the sources (src/raft/...) and the build (dist/src/raft/...). */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, 'proto', 'raft.proto');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('raft: cannot find proto/raft.proto');
}

export interface RaftProto {
  Raft: grpc.ServiceClientConstructor;
  Kv: grpc.ServiceClientConstructor;
}

let cached: RaftProto | null = null;

export function loadRaftProto(): RaftProto {
  if (cached) return cached;
  const def = protoLoader.loadSync(protoPath(), { keepCase: false, longs: Number, enums: Number, defaults: true, arrays: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { tsswarm: { raft: RaftProto } };
  cached = pkg.tsswarm.raft;
  return cached;
}
