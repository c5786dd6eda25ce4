import type { ConfState, Entry, EntryType, Message, MsgType, SnapChunk } from '../core/types.js';
import { varintSize, WireReader as In, WireWriter as Out } from './wire.js';

/**
 * Hand-written protobuf codec for the Raft service's Batch (proto/raft.proto stays the contract:
 * the bytes are the same as any protobuf implementation's). It reads and writes the core's own
 * Message and Entry objects: the generic path built a protobufjs message, a Long per uint64 field
 * and a plain object per entry on each side, for every peer, and that garbage was a large share of
 * a follower's CPU per write. Numbers are exact up to 2^53 (raft indexes and terms); a malformed
 * batch throws a RangeError, which gRPC reports as a bad request.
 */
export interface RaftBatch {
  from: number;
  messages: Message[];
  address: string;
}

// ------------------------------------------------------------------ encode

const numSize = (field: number, v: number): number => (v === 0 ? 0 : varintSize(field << 3) + varintSize(v));
const ldSize = (field: number, len: number): number => varintSize((field << 3) | 2) + varintSize(len) + len;

function entrySize(e: Entry): number {
  return numSize(1, e.term) + numSize(2, e.index) + numSize(3, e.type) + (e.data.length ? ldSize(4, e.data.length) : 0);
}

function confSize(c: ConfState): number {
  let n = 0;
  for (const v of c.voters) n += numSize(1, v) || 2; // a zero id is still written (repeated fields keep zeros)
  for (const v of c.learners) n += numSize(2, v) || 2;
  return n;
}

function metaSize(m: SnapChunk['meta']): number {
  return numSize(1, m.index) + numSize(2, m.term) + ldSize(3, confSize(m.conf));
}

function snapSize(s: SnapChunk): number {
  return ldSize(1, metaSize(s.meta)) + numSize(2, s.offset) + numSize(3, s.total) + (s.data.length ? ldSize(4, s.data.length) : 0);
}

/** Encoded size of a Message's body; entry sizes go to `sizes` (reused by the writer). */
function messageSize(m: Message, sizes: number[]): number {
  let n =
    numSize(1, m.type) + numSize(2, m.from) + numSize(3, m.to) + numSize(4, m.term) + numSize(5, m.logTerm) +
    numSize(6, m.index) + numSize(7, m.commit) + numSize(9, m.reject ? 1 : 0) + numSize(10, m.rejectHint) +
    numSize(11, m.hintTerm) + numSize(12, m.context) + numSize(13, m.transfer ? 1 : 0) + numSize(16, m.offset);
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) {
    const s = entrySize(ents[i]!);
    sizes.push(s);
    n += ldSize(8, s);
  }
  if (m.readCtx) n += ldSize(14, Buffer.byteLength(m.readCtx, 'utf8'));
  if (m.snap) n += ldSize(15, snapSize(m.snap));
  return n;
}

function writeConf(w: Out, c: ConfState): void {
  for (const v of c.voters) {
    w.varint(1 << 3);
    w.varint(v);
  }
  for (const v of c.learners) {
    w.varint(2 << 3);
    w.varint(v);
  }
}

function writeMessage(w: Out, m: Message, sizes: number[], k: { i: number }): void {
  w.num(1, m.type);
  w.num(2, m.from);
  w.num(3, m.to);
  w.num(4, m.term);
  w.num(5, m.logTerm);
  w.num(6, m.index);
  w.num(7, m.commit);
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i]!;
    w.head(8, sizes[k.i++]!);
    w.num(1, e.term);
    w.num(2, e.index);
    w.num(3, e.type);
    w.bytes(4, e.data);
  }
  w.num(9, m.reject ? 1 : 0);
  w.num(10, m.rejectHint);
  w.num(11, m.hintTerm);
  w.num(12, m.context);
  w.num(13, m.transfer ? 1 : 0);
  if (m.readCtx) w.str(14, m.readCtx, Buffer.byteLength(m.readCtx, 'utf8'));
  if (m.snap) {
    const s = m.snap;
    w.head(15, snapSize(s));
    w.head(1, metaSize(s.meta));
    w.num(1, s.meta.index);
    w.num(2, s.meta.term);
    w.head(3, confSize(s.meta.conf));
    writeConf(w, s.meta.conf);
    w.num(2, s.offset);
    w.num(3, s.total);
    w.bytes(4, s.data);
  }
  w.num(16, m.offset);
}

export function encodeBatch(b: RaftBatch): Buffer {
  const sizes: number[] = [];
  const msgSizes: number[] = new Array(b.messages.length);
  const addrLen = Buffer.byteLength(b.address, 'utf8');
  let total = numSize(1, b.from) + (addrLen ? ldSize(3, addrLen) : 0);
  for (let i = 0; i < b.messages.length; i++) {
    const s = messageSize(b.messages[i]!, sizes);
    msgSizes[i] = s;
    total += ldSize(2, s);
  }
  const w = new Out(Buffer.allocUnsafe(total));
  w.num(1, b.from);
  const k = { i: 0 };
  for (let i = 0; i < b.messages.length; i++) {
    w.head(2, msgSizes[i]!);
    writeMessage(w, b.messages[i]!, sizes, k);
  }
  w.str(3, b.address, addrLen);
  if (w.o !== total) throw new Error(`raft codec: encoded ${w.o} bytes, expected ${total}`);
  return w.b;
}

// ------------------------------------------------------------------ decode

function readEntry(r: In, end: number): Entry {
  let term = 0;
  let index = 0;
  let type = 0;
  let data: Uint8Array = EMPTY;
  while (r.o < end) {
    const tag = r.varint();
    const f = tag >>> 3;
    const wire = tag & 7;
    if (f === 1 && wire === 0) term = r.varint();
    else if (f === 2 && wire === 0) index = r.varint();
    else if (f === 3 && wire === 0) type = r.varint();
    else if (f === 4 && wire === 2) {
      const e = r.sub();
      data = r.b.subarray(r.o, e);
      r.o = e;
    } else r.skip(wire);
  }
  return { term, index, type: type as EntryType, data };
}

function readIds(r: In, wire: number, into: number[]): void {
  if (wire === 0) {
    into.push(r.varint());
    return;
  }
  if (wire !== 2) return r.skip(wire);
  const e = r.sub(); // packed
  while (r.o < e) into.push(r.varint());
}

function readConf(r: In, end: number): ConfState {
  const c: ConfState = { voters: [], learners: [] };
  while (r.o < end) {
    const tag = r.varint();
    const f = tag >>> 3;
    if (f === 1) readIds(r, tag & 7, c.voters);
    else if (f === 2) readIds(r, tag & 7, c.learners);
    else r.skip(tag & 7);
  }
  return c;
}

function readMeta(r: In, end: number): SnapChunk['meta'] {
  const m: SnapChunk['meta'] = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  while (r.o < end) {
    const tag = r.varint();
    const f = tag >>> 3;
    const wire = tag & 7;
    if (f === 1 && wire === 0) m.index = r.varint();
    else if (f === 2 && wire === 0) m.term = r.varint();
    else if (f === 3 && wire === 2) {
      const e = r.sub();
      m.conf = readConf(r, e);
    } else r.skip(wire);
  }
  return m;
}

function readSnap(r: In, end: number): SnapChunk | null {
  let meta: SnapChunk['meta'] | null = null;
  let offset = 0;
  let total = 0;
  let data: Uint8Array = EMPTY;
  while (r.o < end) {
    const tag = r.varint();
    const f = tag >>> 3;
    const wire = tag & 7;
    if (f === 1 && wire === 2) {
      const e = r.sub();
      meta = readMeta(r, e);
    } else if (f === 2 && wire === 0) offset = r.varint();
    else if (f === 3 && wire === 0) total = r.varint();
    else if (f === 4 && wire === 2) {
      const e = r.sub();
      data = r.b.subarray(r.o, e);
      r.o = e;
    } else r.skip(wire);
  }
  // a chunk without its snapshot's identity is no chunk: the core sees none (and drops the message)
  return meta ? { meta, offset, total, data } : null;
}

function readMessage(r: In, end: number): Message {
  const m: Message = {
    type: 0 as MsgType, from: 0, to: 0, term: 0, logTerm: 0, index: 0, commit: 0, entries: [],
    reject: false, rejectHint: 0, hintTerm: 0, context: 0, transfer: false, readCtx: '', snap: null, offset: 0,
  };
  while (r.o < end) {
    const tag = r.varint();
    const f = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      const v = r.varint();
      switch (f) {
        case 1: m.type = v as MsgType; break;
        case 2: m.from = v; break;
        case 3: m.to = v; break;
        case 4: m.term = v; break;
        case 5: m.logTerm = v; break;
        case 6: m.index = v; break;
        case 7: m.commit = v; break;
        case 9: m.reject = v !== 0; break;
        case 10: m.rejectHint = v; break;
        case 11: m.hintTerm = v; break;
        case 12: m.context = v; break;
        case 13: m.transfer = v !== 0; break;
        case 16: m.offset = v; break;
        default: break;
      }
    } else if (wire === 2 && (f === 8 || f === 14 || f === 15)) {
      const e = r.sub();
      if (f === 8) m.entries.push(readEntry(r, e));
      else if (f === 14) m.readCtx = r.b.toString('utf8', r.o, e);
      else m.snap = readSnap(r, e);
      r.o = e;
    } else {
      r.skip(wire);
    }
  }
  return m;
}

export function decodeBatch(buf: Buffer): RaftBatch {
  const r = new In(buf, 0, buf.length, 'raft batch');
  const b: RaftBatch = { from: 0, messages: [], address: '' };
  while (r.o < r.end) {
    const tag = r.varint();
    const f = tag >>> 3;
    const wire = tag & 7;
    if (f === 1 && wire === 0) b.from = r.varint();
    else if (f === 2 && wire === 2) {
      const e = r.sub();
      b.messages.push(readMessage(r, e));
      r.o = e;
    } else if (f === 3 && wire === 2) {
      const e = r.sub();
      b.address = buf.toString('utf8', r.o, e);
      r.o = e;
    } else r.skip(wire);
  }
  return b;
}

const EMPTY = new Uint8Array(0);
