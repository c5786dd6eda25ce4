import { createHash } from 'node:crypto';
import type { StateMachine } from '../node.js';

/** A binary key-value state machine for the raft test and benchmark processes. */
export class BinaryKv implements StateMachine {
  readonly map = new Map<string, Buffer>();

  static encodePut(key: string, value: Uint8Array): Uint8Array {
    const k = Buffer.from(key, 'utf8');
    const out = Buffer.allocUnsafe(2 + k.length + value.length);
    out.writeUInt16LE(k.length, 0);
    k.copy(out, 2);
    out.set(value, 2 + k.length);
    return out;
  }

  apply(_index: number, data: Uint8Array): void {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (b.length < 2) return;
    const kl = b.readUInt16LE(0);
    if (2 + kl > b.length) return;
    // copy: the entry buffer belongs to the log, which is compacted away later
    this.map.set(b.toString('utf8', 2, 2 + kl), Buffer.from(b.subarray(2 + kl)));
  }

  snapshot(): Uint8Array {
    const parts: Buffer[] = [];
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(this.map.size, 0);
    parts.push(head);
    for (const [k, v] of this.map) {
      const kb = Buffer.from(k, 'utf8');
      const h = Buffer.allocUnsafe(6);
      h.writeUInt16LE(kb.length, 0);
      h.writeUInt32LE(v.length, 2);
      parts.push(h, kb, v);
    }
    return Buffer.concat(parts);
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
      this.map.set(k, Buffer.from(b.subarray(o, o + vl)));
      o += vl;
    }
  }

  digest(): string {
    const h = createHash('sha256');
    for (const k of [...this.map.keys()].sort()) {
      h.update(k);
      h.update('\0');
      h.update(this.map.get(k)!);
      h.update('\0');
    }
    return h.digest('hex').slice(0, 16);
  }
}
