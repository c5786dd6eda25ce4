import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ sits at the repository root, whether this module runs from src/ (tests) or dist/src/. */
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'node.proto'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`proto directory not found above ${fileURLToPath(import.meta.url)}`);
}

export const PROTO_DIR = findProtoDir();

/** Options shared by every service: camelCase fields, plain numbers, defaults filled in. */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const cache = new Map<string, grpc.GrpcObject>();

export function loadProto(file: string): grpc.GrpcObject {
  let pkg = cache.get(file);
  if (!pkg) {
    pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(PROTO_DIR, file), LOADER_OPTIONS));
    cache.set(file, pkg);
  }
  return pkg;
}

/** Looks up a service constructor by its dotted name, e.g. "tsswarm.node.v1.NodeAPI". */
export function serviceClient(file: string, name: string): grpc.ServiceClientConstructor {
  let obj: unknown = loadProto(file);
  for (const part of name.split('.')) obj = (obj as Record<string, unknown>)[part];
  if (typeof obj !== 'function') throw new Error(`service ${name} not found in ${file}`);
  return obj as grpc.ServiceClientConstructor;
}
