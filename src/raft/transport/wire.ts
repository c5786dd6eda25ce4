/**
 * Protobuf wire-format primitives for the hand-written codecs (transport/codec.ts for raft batches,
 * tools/kvcodec.ts for the benchmark's Put): varints exact up to 2^53, length-delimited fields.
 */

export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Writes protobuf fields into a buffer sized beforehand (varintSize). */
export class WireWriter {
  o = 0;
  constructor(readonly b: Buffer) {}

  varint(v: number): void {
    const b = this.b;
    while (v >= 0x80) {
      b[this.o++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    b[this.o++] = v;
  }

  /** a uint64/uint32/bool field, omitted when zero (proto3) */
  num(field: number, v: number): void {
    if (v === 0) return;
    this.varint(field << 3);
    this.varint(v);
  }

  bytes(field: number, d: Uint8Array): void {
    if (d.length === 0) return;
    this.varint((field << 3) | 2);
    this.varint(d.length);
    this.b.set(d, this.o);
    this.o += d.length;
  }

  str(field: number, s: string, len: number): void {
    if (len === 0) return;
    this.varint((field << 3) | 2);
    this.varint(len);
    this.o += this.b.write(s, this.o, len, 'utf8');
  }

  head(field: number, len: number): void {
    this.varint((field << 3) | 2);
    this.varint(len);
  }
}

/** Reads protobuf fields in [start, end); malformed input is a RangeError naming `what`. */
export class WireReader {
  o: number;
  constructor(
    readonly b: Buffer,
    start: number,
    readonly end: number,
    private readonly what: string,
  ) {
    this.o = start;
  }

  varint(): number {
    const b = this.b;
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.o >= this.end) throw new RangeError(`${this.what}: truncated varint`);
      const x = b[this.o++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new RangeError(`${this.what}: number beyond 2^53`);
        return v;
      }
      mul *= 128;
    }
    throw new RangeError(`${this.what}: varint too long`);
  }

  /** the end offset of a length-delimited field starting here */
  sub(): number {
    const len = this.varint();
    const e = this.o + len;
    if (e > this.end) throw new RangeError(`${this.what}: field runs past its message`);
    return e;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.o += 8;
    else if (wire === 2) this.o = this.sub();
    else if (wire === 5) this.o += 4;
    else throw new RangeError(`${this.what}: unsupported wire type ${wire}`);
    if (this.o > this.end) throw new RangeError(`${this.what}: truncated field`);
  }
}
