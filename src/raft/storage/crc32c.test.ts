import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

/** The plain bitwise definition, to check the sliced tables against. */
function reference(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('matches the published check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('matches the bitwise definition at every length and alignment, and continues from a seed', () => {
    const buf = randomBytes(300);
    for (let len = 0; len < 70; len++) {
      for (const off of [0, 1, 3, 7]) {
        const d = buf.subarray(off, off + len);
        expect(crc32c(d)).toBe(reference(d));
      }
    }
    const whole = buf.subarray(0, 250);
    expect(crc32c(whole.subarray(100), crc32c(whole.subarray(0, 100)))).toBe(reference(whole));
  });
});
