import type * as grpc from '@grpc/grpc-js';
import { loadRaftProto } from '../../../src/raft/transport/proto.js';
import { varintSize, WireReader, WireWriter } from '../../../src/raft/transport/wire.js';

/**
 * The Kv service of proto/raft.proto with Put's messages coded by hand: the unary put is the
 * benchmark's per-write path, where proto-loader built a protobufjs message and a Long for every
 * request and answer. The other methods keep proto-loader's codecs. Same bytes on the wire.
 */
export interface PutRequest {
  key: string;
  value: Uint8Array;
}

export function encodePutRequest(r: PutRequest): Buffer {
  const kl = Buffer.byteLength(r.key, 'utf8');
  const vl = r.value.length;
  const w = new WireWriter(Buffer.allocUnsafe((kl ? 1 + varintSize(kl) + kl : 0) + (vl ? 1 + varintSize(vl) + vl : 0)));
  w.str(1, r.key, kl);
  w.bytes(2, r.value);
  return w.b;
}

export function decodePutRequest(b: Buffer): { key: string; value: Buffer } {
  const r = new WireReader(b, 0, b.length, 'kv');
  let key = '';
  let value: Buffer = EMPTY;
  while (r.o < b.length) {
    const tag = r.varint();
    const field = tag >>> 3;
    if ((tag & 7) === 2 && (field === 1 || field === 2)) {
      const end = r.sub();
      if (field === 1) key = b.toString('utf8', r.o, end);
      else value = b.subarray(r.o, end);
      r.o = end;
    } else r.skip(tag & 7);
  }
  return { key, value };
}

export function encodePutResponse(r: { index: number }): Buffer {
  if (!r.index) return Buffer.alloc(0);
  const w = new WireWriter(Buffer.allocUnsafe(1 + varintSize(r.index)));
  w.num(1, r.index);
  return w.b;
}

export function decodePutResponse(b: Buffer): { index: number } {
  const r = new WireReader(b, 0, b.length, 'kv');
  let index = 0;
  while (r.o < b.length) {
    const tag = r.varint();
    if (tag === 0x08) index = r.varint();
    else r.skip(tag & 7);
  }
  return { index };
}

const EMPTY: Buffer = Buffer.alloc(0);

let cached: grpc.ServiceDefinition | null = null;

/** The Kv service definition, Put with the codecs above. */
export function kvService(): grpc.ServiceDefinition {
  if (cached) return cached;
  const base = loadRaftProto().Kv.service;
  cached = {
    ...base,
    Put: {
      ...base['Put']!,
      requestSerialize: encodePutRequest,
      requestDeserialize: decodePutRequest,
      responseSerialize: encodePutResponse,
      responseDeserialize: decodePutResponse,
    },
  } as grpc.ServiceDefinition;
  return cached;
}
