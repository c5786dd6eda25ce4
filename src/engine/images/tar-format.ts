/**
 * A streaming reader for tar archives (ustar, GNU long names, PAX headers) and a writer for the few
 * synthetic entries we emit ourselves. We parse tar here rather than with node-tar because the layer
 * path needs the raw bytes of every entry (to forward them to GNU tar untouched) and the exact same
 * interpretation of names that we validate.
 */
import { ImageError } from './errors.js';

export const BLOCK = 512;

/** Entry types from the tar formats (the typeflag byte). */
export const TarType = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  charDevice: '3',
  blockDevice: '4',
  directory: '5',
  fifo: '6',
  contiguous: '7',
  paxHeader: 'x',
  paxGlobal: 'g',
  gnuLongName: 'L',
  gnuLongLink: 'K',
} as const;

export interface TarEntry {
  /** The member name as the archive spells it (PAX path, GNU long name or ustar prefix/name). */
  path: string;
  linkpath: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Bytes of content that follow the header (without padding). */
  size: number;
  devmajor: number;
  devminor: number;
  /** PAX records of this entry (globals merged in), e.g. SCHILY.xattr.* */
  pax: Record<string, string>;
}

export type TarEvent =
  /** `raw` holds the bytes of the entry's headers (PAX/long-name blocks and the header block). */
  | { kind: 'entry'; entry: TarEntry; raw: Buffer[] }
  | { kind: 'data'; chunk: Buffer }
  /** The content of the current entry is complete; `padding` bytes of zeros follow it in the archive. */
  | { kind: 'entryEnd'; padding: number }
  | { kind: 'end' };

function readString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

function readNumber(b: Buffer, off: number, len: number): number {
  const first = b[off] ?? 0;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement in the remaining bits; we only accept positive values.
    if (first & 0x40) throw new ImageError('negative base-256 number');
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + (b[off + i] ?? 0);
    return v;
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+.*$/s, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new ImageError(`bad octal number ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = readNumber(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (b[i] ?? 0);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** True when `b` starts with a plausible tar header (used to sniff formats). */
export function looksLikeTar(b: Buffer): boolean {
  if (b.length < BLOCK) return false;
  if (isZeroBlock(b.subarray(0, BLOCK))) return true; // an empty archive
  try {
    return checksumOk(b.subarray(0, BLOCK));
  } catch {
    return false;
  }
}

interface RawHeader {
  name: string;
  linkname: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

function parseHeader(b: Buffer): RawHeader {
  if (!checksumOk(b)) throw new ImageError('header checksum mismatch');
  const magic = b.toString('latin1', 257, 263);
  let name = readString(b, 0, 100);
  // POSIX ustar splits long names into prefix + name; the GNU format uses those bytes for other things.
  if (magic === 'ustar\0') {
    const prefix = readString(b, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const typeByte = b[156] ?? 0;
  return {
    name,
    linkname: readString(b, 157, 100),
    type: typeByte === 0 ? TarType.file : String.fromCharCode(typeByte),
    mode: readNumber(b, 100, 8) & 0o7777,
    uid: readNumber(b, 108, 8),
    gid: readNumber(b, 116, 8),
    size: readNumber(b, 124, 12),
    mtime: readNumber(b, 136, 12),
    devmajor: readNumber(b, 329, 8),
    devminor: readNumber(b, 337, 8),
  };
}

/** Parses PAX extended header records: "<len> <key>=<value>\n", len counting the whole record in bytes. */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break;
    const space = data.indexOf(0x20, off);
    const len = space === -1 ? NaN : Number(data.toString('latin1', off, space));
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length) throw new ImageError('tar: malformed PAX header');
    const record = data.toString('utf8', space + 1, off + len - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw new ImageError('tar: malformed PAX record');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    off += len;
  }
  return out;
}

function paxNumber(pax: Record<string, string>, key: string, fallback: number): number {
  const v = pax[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new ImageError(`tar: bad PAX ${key}=${JSON.stringify(v)}`);
  return Math.floor(n);
}

const MAX_META = 1 << 20; // PAX and long-name headers are small; refuse absurd ones instead of buffering them

/**
 * Parses a tar stream into entries and their content. After the end-of-archive marker it keeps
 * draining the input (so that a hash tapped upstream still sees every byte) but yields nothing more.
 * A missing end marker after a complete entry is tolerated (several writers omit it); a truncated
 * entry is an error.
 */
export async function* parseTar(input: AsyncIterable<Buffer>): AsyncGenerator<TarEvent> {
  const header = Buffer.alloc(BLOCK);
  let headerFill = 0;
  let raw: Buffer[] = [];
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let meta: { type: string; chunks: Buffer[]; fill: number; size: number } | undefined;
  let remaining = 0; // content bytes of the current entry still to come
  let padding = 0; // zero bytes after the content still to skip
  let inEntry = false;
  let ended = false;
  let offset = 0;

  for await (const chunk of input) {
    let off = 0;
    while (off < chunk.length && !ended) {
      if (remaining > 0) {
        const n = Math.min(remaining, chunk.length - off);
        const piece = chunk.subarray(off, off + n);
        off += n;
        remaining -= n;
        if (meta) {
          meta.chunks.push(Buffer.from(piece));
          meta.fill += n;
          raw.push(Buffer.from(piece));
        } else {
          yield { kind: 'data', chunk: piece };
        }
        if (remaining === 0 && !meta && inEntry) {
          inEntry = false;
          yield { kind: 'entryEnd', padding };
        }
        continue;
      }
      if (padding > 0) {
        const n = Math.min(padding, chunk.length - off);
        if (meta) raw.push(Buffer.from(chunk.subarray(off, off + n)));
        off += n;
        padding -= n;
        continue;
      }
      if (meta) {
        // A PAX or long-name header's content is complete: it describes the next entry.
        const data = Buffer.concat(meta.chunks);
        if (meta.type === TarType.paxHeader) pax = { ...pax, ...parsePax(data) };
        else if (meta.type === TarType.paxGlobal) globalPax = { ...globalPax, ...parsePax(data) };
        else if (meta.type === TarType.gnuLongName) longName = readString(data, 0, data.length);
        else longLink = readString(data, 0, data.length);
        meta = undefined;
        continue;
      }
      const n = Math.min(BLOCK - headerFill, chunk.length - off);
      chunk.copy(header, headerFill, off, off + n);
      headerFill += n;
      off += n;
      if (headerFill < BLOCK) continue;
      headerFill = 0;
      const at = offset;
      offset += BLOCK;
      if (isZeroBlock(header)) {
        ended = true;
        yield { kind: 'end' };
        break;
      }
      let h: RawHeader;
      try {
        h = parseHeader(header);
      } catch (err) {
        if (at === 0) throw new ImageError('not a tar archive');
        throw new ImageError(`corrupt tar header at byte ${at}: ${(err as Error).message}`);
      }
      raw.push(Buffer.from(header));
      const metaType = h.type === TarType.paxHeader || h.type === TarType.paxGlobal ||
        h.type === TarType.gnuLongName || h.type === TarType.gnuLongLink;
      if (metaType) {
        if (h.size > MAX_META) throw new ImageError(`tar: ${h.size}-byte '${h.type}' header at byte ${at} is too large`);
        meta = { type: h.type, chunks: [], fill: 0, size: h.size };
        remaining = h.size;
        padding = (BLOCK - (h.size % BLOCK)) % BLOCK;
        offset += h.size + padding;
        continue;
      }
      const all = { ...globalPax, ...pax };
      const size = paxNumber(all, 'size', h.size);
      const entry: TarEntry = {
        path: all.path ?? longName ?? h.name,
        linkpath: all.linkpath ?? longLink ?? h.linkname,
        type: h.type,
        mode: h.mode,
        uid: paxNumber(all, 'uid', h.uid),
        gid: paxNumber(all, 'gid', h.gid),
        mtime: paxNumber(all, 'mtime', h.mtime),
        size,
        devmajor: h.devmajor,
        devminor: h.devminor,
        pax: all,
      };
      const entryRaw = raw;
      raw = [];
      pax = {};
      longName = undefined;
      longLink = undefined;
      remaining = size;
      padding = (BLOCK - (size % BLOCK)) % BLOCK;
      offset += size + padding;
      inEntry = size > 0;
      yield { kind: 'entry', entry, raw: entryRaw };
      if (size === 0) yield { kind: 'entryEnd', padding: 0 };
    }
  }
  if (ended) return;
  if (remaining > 0 || padding > 0 || headerFill > 0 || meta || raw.length > 0) {
    throw new ImageError('tar archive is truncated');
  }
  if (offset === 0) throw new ImageError('empty file (not a tar archive)');
  yield { kind: 'end' };
}

function writeString(b: Buffer, s: string, off: number, len: number): void {
  b.write(s, off, len, 'utf8');
}

function writeOctal(b: Buffer, n: number, off: number, len: number): void {
  b.write(`${n.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

export interface NewEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  devmajor?: number;
  devminor?: number;
  /** Target of a symlink or hardlink */
  linkpath?: string;
  /** Extra PAX records, e.g. SCHILY.xattr.trusted.overlay.opaque */
  pax?: Record<string, string>;
}

/** Encodes a content-less entry (device, directory, ...), with a PAX header when needed. */
export function encodeEntry(e: NewEntry): Buffer {
  const pax: Record<string, string> = { ...(e.pax ?? {}) };
  let name = e.path;
  if (Buffer.byteLength(name) > 100) {
    pax.path = name;
    name = name.slice(0, 99).replace(/[^\x20-\x7e]/g, '_');
  }
  let linkname = e.linkpath ?? '';
  if (Buffer.byteLength(linkname) > 100) {
    pax.linkpath = linkname;
    linkname = '';
  }
  const MAX7 = 0o7777777;
  const ids = (v: number, key: string): number => {
    if (v > MAX7) { pax[key] = String(v); return 0; }
    return v;
  };
  const uid = ids(e.uid, 'uid');
  const gid = ids(e.gid, 'gid');
  const mtime = Math.max(0, Math.min(Math.floor(e.mtime), 0o77777777777));
  const blocks: Buffer[] = [];
  const records = Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join('');
  if (records !== '') {
    const data = Buffer.from(records, 'utf8');
    blocks.push(headerBlock({ name: 'PaxHeader', linkname: '', type: TarType.paxHeader, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime, devmajor: 0, devminor: 0 }));
    const padded = Buffer.alloc(Math.ceil(data.length / BLOCK) * BLOCK);
    data.copy(padded);
    blocks.push(padded);
  }
  blocks.push(headerBlock({ name, linkname, type: e.type, mode: e.mode, uid, gid, size: 0, mtime, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 }));
  return Buffer.concat(blocks);
}

function headerBlock(h: { name: string; linkname: string; type: string; mode: number; uid: number; gid: number; size: number; mtime: number; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, h.name, 0, 100);
  writeOctal(b, h.mode & 0o7777, 100, 8);
  writeOctal(b, h.uid, 108, 8);
  writeOctal(b, h.gid, 116, 8);
  writeOctal(b, h.size, 124, 12);
  writeOctal(b, h.mtime, 136, 12);
  b.write(h.type, 156, 1, 'latin1');
  writeString(b, h.linkname, 157, 100);
  b.write('ustar\0' + '00', 257, 8, 'latin1');
  writeOctal(b, h.devmajor, 329, 8);
  writeOctal(b, h.devminor, 337, 8);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i] ?? 0;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
