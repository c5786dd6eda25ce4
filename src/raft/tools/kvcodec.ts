import type * as grpc from '@grpc/grpc-js';
import { loadRaftProto } from '../transport/proto.js';

/**
 * The Kv service of proto/raft.proto with Put's messages coded by hand: the unary put is the
 * benchmark's per-write path, where proto-loader built a protobufjs message and a Long for every
 * request and answer. The other methods keep proto-loader's codecs. Same bytes on the wire.
 */
export interface PutRequest {
  key: string;
  value: Uint8Array;
}

function varint(b: Buffer, o: number, v: number): number {
  while (v >= 0x80) {
    b[o++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  b[o++] = v;
  return o;
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Reads a varint at r.o; RangeError when truncated or beyond 2^53. */
function readVarint(b: Buffer, r: { o: number }): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (r.o >= b.length) throw new RangeError('kv: truncated varint');
    const x = b[r.o++]!;
    v += (x & 0x7f) * mul;
    if (x < 0x80) {
      if (v > Number.MAX_SAFE_INTEGER) throw new RangeError('kv: number beyond 2^53');
      return v;
    }
    mul *= 128;
  }
  throw new RangeError('kv: varint too long');
}

export function encodePutRequest(r: PutRequest): Buffer {
  const kl = Buffer.byteLength(r.key, 'utf8');
  const vl = r.value.length;
  const b = Buffer.allocUnsafe((kl ? 1 + varintSize(kl) + kl : 0) + (vl ? 1 + varintSize(vl) + vl : 0));
  let o = 0;
  if (kl) {
    b[o++] = 0x0a;
    o = varint(b, o, kl);
    o += b.write(r.key, o, kl, 'utf8');
  }
  if (vl) {
    b[o++] = 0x12;
    o = varint(b, o, vl);
    b.set(r.value, o);
  }
  return b;
}

export function decodePutRequest(b: Buffer): { key: string; value: Buffer } {
  const r = { o: 0 };
  let key = '';
  let value: Buffer = EMPTY;
  while (r.o < b.length) {
    const tag = readVarint(b, r);
    const wire = tag & 7;
    if (wire === 2) {
      const len = readVarint(b, r);
      const end = r.o + len;
      if (end > b.length) throw new RangeError('kv: field runs past the message');
      if (tag >>> 3 === 1) key = b.toString('utf8', r.o, end);
      else if (tag >>> 3 === 2) value = b.subarray(r.o, end);
      r.o = end;
    } else if (wire === 0) readVarint(b, r);
    else if (wire === 1) r.o += 8;
    else if (wire === 5) r.o += 4;
    else throw new RangeError(`kv: unsupported wire type ${wire}`);
  }
  if (r.o > b.length) throw new RangeError('kv: truncated field');
  return { key, value };
}

export function encodePutResponse(r: { index: number }): Buffer {
  if (!r.index) return Buffer.alloc(0);
  const b = Buffer.allocUnsafe(1 + varintSize(r.index));
  b[0] = 0x08;
  varint(b, 1, r.index);
  return b;
}

export function decodePutResponse(b: Buffer): { index: number } {
  const r = { o: 0 };
  let index = 0;
  while (r.o < b.length) {
    const tag = readVarint(b, r);
    if (tag === 0x08) index = readVarint(b, r);
    else if ((tag & 7) === 0) readVarint(b, r);
    else if ((tag & 7) === 2) r.o += readVarint(b, r);
    else throw new RangeError('kv: unexpected field in PutResponse');
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
