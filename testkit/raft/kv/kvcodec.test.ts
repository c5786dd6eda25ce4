import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodePutRequest, decodePutResponse, encodePutRequest, encodePutResponse } from './kvcodec.js';

const root = protobuf.loadSync(join(dirname(fileURLToPath(import.meta.url)), '../../../proto/raft.proto'));
const Req = root.lookupType('tsswarm.raft.PutRequest');
const Res = root.lookupType('tsswarm.raft.PutResponse');

describe('Kv Put codec', () => {
  it('writes and reads the same bytes as protobufjs for proto/raft.proto', () => {
    for (const r of [{ key: 'kü-1', value: Buffer.alloc(100, 0x61) }, { key: '', value: Buffer.alloc(0) }, { key: 'x'.repeat(300), value: Buffer.from([0]) }]) {
      const theirs = Buffer.from(Req.encode(Req.create(r)).finish());
      expect(encodePutRequest(r).equals(theirs)).toBe(true);
      const back = decodePutRequest(theirs);
      expect(back.key).toBe(r.key);
      expect(Buffer.from(back.value).equals(r.value)).toBe(true);
    }
    for (const index of [0, 1, 127, 128, 2 ** 40 + 5, 2 ** 53 - 1]) {
      const theirs = Buffer.from(Res.encode(Res.fromObject({ index })).finish());
      expect(encodePutResponse({ index }).equals(theirs)).toBe(true);
      expect(decodePutResponse(theirs).index).toBe(index);
    }
  });

  it('refuses truncated input with a RangeError', () => {
    const b = encodePutRequest({ key: 'key', value: Buffer.alloc(50, 1) });
    for (const cut of [1, 4, b.length - 1]) expect(() => decodePutRequest(b.subarray(0, cut))).toThrow(RangeError);
    expect(() => decodePutResponse(Buffer.from([0x08, 0xff]))).toThrow(RangeError);
  });
});
