import type { ConfState, Entry, EntryType, HardState, SnapshotMeta } from '../core/types.js';
import { crc32c } from './crc32c.js';

/**
 * Record layouts on disk. Every record starts with a CRC-32C of the rest, so a flipped bit or a torn
 * write is found on load instead of being replayed into the state machine.
 *
 * entry:      crc u32 | index u64 | term u64 | type u8 | data
 * hard state: crc u32 | term u64 | vote u64 | commit u64
 * snapshot:   crc u32 | index u64 | term u64 | n voters u32 | voters u64... | n learners u32 | learners u64... | data
 */
export class CorruptRecordError extends Error {}

export function segmentKey(index: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = 0x65; // 'e'
  k.writeBigUInt64BE(BigInt(index), 1);
  return k;
}

export const ENTRY_KEY_MIN = Buffer.from([0x65]);
export const ENTRY_KEY_MAX = Buffer.from([0x66]);
export const HARD_STATE_KEY = Buffer.from('h');
export const SNAPSHOT_KEY = Buffer.from('s');
export const PROPOSAL_IDS_KEY = Buffer.from('q');

/** proposal ids reserved: crc u32 | highest reserved id u64 */
export function encodeProposalIds(upTo: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  writeU64(b, 4, upTo);
  b.writeUInt32BE(crc32c(b.subarray(4)), 0);
  return b;
}

export function decodeProposalIds(b: Uint8Array): number {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length !== 12 || buf.readUInt32BE(0) !== crc32c(buf.subarray(4))) throw new CorruptRecordError('proposal ids: checksum mismatch');
  return readU64(buf, 4);
}

/**
 * A segment: the entries of one ready batch under one key (one LevelDB record per batch instead of
 * one per entry). Each entry inside keeps its own CRC-32C:
 *   crc u32 | index u64 | term u64 | type u8 | len u32 | data   (crc covers index..data)
 */
const ENTRY_HEAD = 25;

export function encodeSegment(ents: readonly Entry[]): Buffer {
  let total = 0;
  for (let i = 0; i < ents.length; i++) total += ENTRY_HEAD + ents[i]!.data.length;
  const b = Buffer.allocUnsafe(total);
  let o = 0;
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i]!;
    writeU64(b, o + 4, e.index);
    writeU64(b, o + 12, e.term);
    b[o + 20] = e.type;
    b.writeUInt32BE(e.data.length, o + 21);
    b.set(e.data, o + ENTRY_HEAD);
    const end = o + ENTRY_HEAD + e.data.length;
    b.writeUInt32BE(crc32c(b.subarray(o + 4, end)), o);
    o = end;
  }
  return b;
}

/** Decodes a segment stored under key `first`; throws CorruptRecordError naming the bad entry. */
export function decodeSegment(raw: Uint8Array, first: number): Entry[] {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Entry[] = [];
  let o = 0;
  let expect = first;
  while (o < b.length) {
    if (o + ENTRY_HEAD > b.length) throw new CorruptRecordError(`entry ${expect}: record truncated`);
    const len = b.readUInt32BE(o + 21);
    const end = o + ENTRY_HEAD + len;
    if (end > b.length) throw new CorruptRecordError(`entry ${expect}: record truncated`);
    if (b.readUInt32BE(o) !== crc32c(b.subarray(o + 4, end))) throw new CorruptRecordError(`entry ${expect}: checksum mismatch`);
    const index = readU64(b, o + 4);
    if (index !== expect) throw new CorruptRecordError(`entry ${expect}: stored out of place (says ${index})`);
    const type = b[o + 20]!;
    if (type !== 0 && type !== 1) throw new CorruptRecordError(`entry ${expect}: unknown type ${type}`);
    out.push({ index, term: readU64(b, o + 12), type: type as EntryType, data: b.subarray(o + ENTRY_HEAD, end) });
    o = end;
    expect++;
  }
  if (out.length === 0) throw new CorruptRecordError(`segment at ${first} is empty`);
  return out;
}

/** Byte offset of entry `index` inside a segment starting at `first` (for tests that damage one). */
export function entryOffsetInSegment(raw: Uint8Array, first: number, index: number): number {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let o = 0;
  for (let i = first; i < index; i++) o += ENTRY_HEAD + b.readUInt32BE(o + 21);
  return o;
}

export function encodeHardState(h: HardState): Buffer {
  const b = Buffer.allocUnsafe(28);
  writeU64(b, 4, h.term);
  writeU64(b, 12, h.vote);
  writeU64(b, 20, h.commit);
  b.writeUInt32BE(crc32c(b.subarray(4)), 0);
  return b;
}

export function decodeHardState(b: Uint8Array): HardState {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length !== 28 || buf.readUInt32BE(0) !== crc32c(buf.subarray(4))) throw new CorruptRecordError('hard state: checksum mismatch');
  return { term: readU64(buf, 4), vote: readU64(buf, 12), commit: readU64(buf, 20) };
}

export function encodeSnapshot(meta: SnapshotMeta, data: Uint8Array): Buffer {
  const h = snapshotHeader(meta, data);
  return Buffer.concat([h, data]);
}

/** The record up to its data, with the checksum covering the data too (written without a copy). */
export function snapshotHeader(meta: SnapshotMeta, data: Uint8Array): Buffer {
  const c = meta.conf;
  const head = 4 + 16 + 4 + 8 * c.voters.length + 4 + 8 * c.learners.length;
  const b = Buffer.allocUnsafe(head);
  let o = 4;
  o = writeU64(b, o, meta.index);
  o = writeU64(b, o, meta.term);
  b.writeUInt32BE(c.voters.length, o);
  o += 4;
  for (const v of c.voters) o = writeU64(b, o, v);
  b.writeUInt32BE(c.learners.length, o);
  o += 4;
  for (const v of c.learners) o = writeU64(b, o, v);
  b.writeUInt32BE(crc32c(data, crc32c(b.subarray(4))), 0);
  return b;
}

export function decodeSnapshot(b: Uint8Array): { meta: SnapshotMeta; data: Uint8Array } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 28 || buf.readUInt32BE(0) !== crc32c(buf.subarray(4))) throw new CorruptRecordError('snapshot: checksum mismatch');
  let o = 4;
  const index = readU64(buf, o);
  const term = readU64(buf, o + 8);
  o += 16;
  const conf: ConfState = { voters: [], learners: [] };
  const nv = buf.readUInt32BE(o);
  o += 4;
  for (let i = 0; i < nv; i++, o += 8) conf.voters.push(readU64(buf, o));
  const nl = buf.readUInt32BE(o);
  o += 4;
  for (let i = 0; i < nl; i++, o += 8) conf.learners.push(readU64(buf, o));
  return { meta: { index, term, conf }, data: buf.subarray(o) };
}

function writeU64(b: Buffer, o: number, v: number): number {
  b.writeUInt32BE(Math.floor(v / 0x100000000), o);
  b.writeUInt32BE(v >>> 0, o + 4);
  return o + 8;
}

function readU64(b: Buffer, o: number): number {
  return b.readUInt32BE(o) * 0x100000000 + b.readUInt32BE(o + 4);
}
