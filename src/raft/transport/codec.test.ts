import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { MsgType, newMessage, type Message } from '../core/types.js';
import { decodeBatch, encodeBatch, type RaftBatch } from './codec.js';

const PROTO = join(dirname(fileURLToPath(import.meta.url)), '../../../proto/raft.proto');
const Batch = protobuf.loadSync(PROTO).lookupType('tsswarm.raft.Batch');

function sample(): RaftBatch {
  const app = newMessage(MsgType.App, 1, 2, 7);
  app.index = 2 ** 40 + 3;
  app.logTerm = 6;
  app.commit = 2 ** 53 - 1;
  app.entries = [
    { term: 7, index: 2 ** 40 + 4, type: 0, data: Buffer.from('hello') },
    { term: 7, index: 2 ** 40 + 5, type: 1, data: new Uint8Array(0) },
    { term: 0, index: 0, type: 0, data: new Uint8Array(300).fill(9) },
  ];
  const resp = newMessage(MsgType.AppResp, 1, 2, 7);
  resp.reject = true;
  resp.rejectHint = 127;
  resp.hintTerm = 128;
  resp.context = 16384;
  resp.transfer = true;
  resp.readCtx = 'read:ü:42';
  resp.offset = 99;
  const snap = newMessage(MsgType.Snap, 1, 3, 7);
  snap.snap = { meta: { index: 1000, term: 5, conf: { voters: [1, 2, 3], learners: [300] } }, offset: 1 << 20, total: 3 << 20, data: Buffer.from('chunk') };
  return { from: 1, messages: [app, resp, snap, newMessage(MsgType.Heartbeat, 1, 2, 0)], address: '127.0.0.1:4242' };
}

/** what protobufjs (any protobuf implementation) reads from the same bytes, in the core's shape */
function viaProtobufjs(buf: Uint8Array): RaftBatch {
  const o = Batch.toObject(Batch.decode(buf), { longs: Number, defaults: true, arrays: true }) as {
    from: number; address: string; messages: (Omit<Message, 'snap'> & { snap: Message['snap'] | null })[];
  };
  return {
    from: o.from, address: o.address,
    messages: o.messages.map((m) => ({
      ...m,
      entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: new Uint8Array(e.data) })),
      snap: m.snap ? { ...m.snap, data: new Uint8Array(m.snap.data) } : null,
    })),
  };
}

/** plain data with bytes as hex, for deep comparison */
function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}
const b64 = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(b64);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, b64(x)]));
  return v;
};

describe('raft batch codec', () => {
  it('round-trips every field, numbers up to 2^53', () => {
    const b = sample();
    expect(norm(decodeBatch(encodeBatch(b)))).toEqual(norm(b));
  });

  it('writes the bytes proto/raft.proto describes, and reads what protobufjs writes', () => {
    const b = sample();
    expect(norm(viaProtobufjs(encodeBatch(b)))).toEqual(norm(b));
    // protobufjs packs the repeated ids and orders fields its own way
    const theirs = Buffer.from(Batch.encode(Batch.fromObject(b64(b) as Record<string, unknown>)).finish());
    expect(norm(decodeBatch(theirs))).toEqual(norm(b));
  });

  it('refuses truncated or malformed input with a RangeError', () => {
    const buf = encodeBatch(sample());
    for (const cut of [1, 7, 40, buf.length - 1]) expect(() => decodeBatch(buf.subarray(0, cut))).toThrow(RangeError);
    expect(() => decodeBatch(Buffer.from([0x0b, 0x01]))).toThrow(RangeError); // wire type 3 (groups)
    expect(() => decodeBatch(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toThrow(RangeError);
  });
});
