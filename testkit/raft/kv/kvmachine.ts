import { createHash } from 'node:crypto';
import type { StateMachine } from '../../../src/raft/node.js';

/** A binary key-value state machine for the raft test and benchmark processes. */
export class BinaryKv implements StateMachine {
  /** values kept as latin1 strings: byte-exact and far smaller than one Buffer object per value */
  readonly map = new Map<string, string>();

  static encodePut(key: string, value: Uint8Array): Uint8Array {
    const k = Buffer.from(key, 'utf8');
    const out = Buffer.allocUnsafe(2 + k.length + value.length);
    out.writeUInt16LE(k.length, 0);
    k.copy(out, 2);
    out.set(value, 2 + k.length);
    return out;
  }

  get(key: string): Buffer | undefined {
    const v = this.map.get(key);
    return v === undefined ? undefined : Buffer.from(v, 'latin1');
  }

  apply(_index: number, data: Uint8Array): void {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (b.length < 2) return;
    const kl = b.readUInt16LE(0);
    if (2 + kl > b.length) return;
    this.map.set(b.toString('utf8', 2, 2 + kl), b.toString('latin1', 2 + kl));
  }

  /** One allocation of the exact size: snapshots of 100k keys are taken every few seconds. */
  snapshot(): Uint8Array {
    let total = 4;
    for (const [k, v] of this.map) total += 6 + Buffer.byteLength(k, 'utf8') + v.length;
    const b = Buffer.allocUnsafe(total);
    b.writeUInt32LE(this.map.size, 0);
    let o = 4;
    for (const [k, v] of this.map) {
      const kl = b.write(k, o + 6, 'utf8');
      b.writeUInt16LE(kl, o);
      b.writeUInt32LE(v.length, o + 2);
      o += 6 + kl;
      o += b.write(v, o, 'latin1');
    }
    return b;
  }

  restore(data: Uint8Array): void {
    this.map.clear();
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (b.length < 4) return;
    const n = b.readUInt32LE(0);
    let o = 4;
    for (let i = 0; i < n; i++) {
      const kl = b.readUInt16LE(o);
      const vl = b.readUInt32LE(o + 2);
      o += 6;
      const k = b.toString('utf8', o, o + kl);
      o += kl;
      this.map.set(k, b.toString('latin1', o, o + vl));
      o += vl;
    }
  }

  digest(): string {
    const h = createHash('sha256');
    for (const k of [...this.map.keys()].sort()) {
      h.update(k);
      h.update('\0');
      h.update(this.map.get(k)!, 'latin1');
      h.update('\0');
    }
    return h.digest('hex').slice(0, 16);
  }
}
