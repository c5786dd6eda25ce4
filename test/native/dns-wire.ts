// DNS messages built and read by hand for the resolver tests (no DNS library in node_modules):
// only what the tests need — queries, the fake upstream's replies, and reading any reply.

export const TYPE = { A: 1, NS: 2, MX: 15, TXT: 16, AAAA: 28, OPT: 41 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

export function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((l) => l.length > 0);
  const out: Buffer[] = [];
  for (const label of parts) {
    const b = Buffer.from(label, 'latin1');
    out.push(Buffer.from([b.length]), b);
  }
  out.push(Buffer.from([0]));
  return Buffer.concat(out);
}

export interface QueryOptions {
  id: number;
  name: string;
  type?: number;
  rd?: boolean;
  /** Adds an OPT record advertising this UDP payload size. */
  edns?: number;
}

export function encodeQuery(o: QueryOptions): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.id, 0);
  header.writeUInt16BE(o.rd === false ? 0 : 0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(o.edns ? 1 : 0, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(o.type ?? TYPE.A, 0);
  tail.writeUInt16BE(1, 2);
  const parts = [header, encodeName(o.name), tail];
  if (o.edns) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(TYPE.OPT, 1);
    opt.writeUInt16BE(o.edns, 3);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

export interface Answer { name: string; type: number; ttl: number; data: string }
export interface Message {
  id: number;
  qr: boolean; aa: boolean; tc: boolean; rd: boolean; ra: boolean;
  rcode: number;
  question?: { name: string; type: number };
  answers: Answer[];
  additional: number;
}

function readName(b: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = start;
  let end = -1;
  for (let jumps = 0; jumps < 64; ) {
    if (pos >= b.length) throw new Error('name runs past the end of the message');
    const len = b[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { name: labels.join('.'), end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | b[pos + 1]!;
      jumps++;
      continue;
    }
    labels.push(b.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('name with too many pointers');
}

export function decodeMessage(b: Buffer): Message {
  if (b.length < 12) throw new Error(`short DNS message (${b.length} bytes)`);
  const flags = b.readUInt16BE(2);
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  const msg: Message = {
    id: b.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0x0f,
    answers: [],
    additional: b.readUInt16BE(10),
  };
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const n = readName(b, pos);
    msg.question = { name: n.name, type: b.readUInt16BE(n.end) };
    pos = n.end + 4;
  }
  for (let i = 0; i < an; i++) {
    const n = readName(b, pos);
    const type = b.readUInt16BE(n.end);
    const ttl = b.readUInt32BE(n.end + 4);
    const rdlen = b.readUInt16BE(n.end + 8);
    const rdata = b.subarray(n.end + 10, n.end + 10 + rdlen);
    const data = type === TYPE.A ? [...rdata].join('.') : rdata.toString('hex');
    msg.answers.push({ name: n.name, type, ttl, data });
    pos = n.end + 10 + rdlen;
  }
  return msg;
}

/** The fake upstream's answer to QUERY: one A record ADDR with TTL 60, RA set. */
export function encodeAReply(query: Buffer, addr: string): Buffer {
  const q = readName(query, 12);
  const question = query.subarray(12, q.end + 4);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8080 | (query.readUInt16BE(2) & 0x0100), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(1, 6);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(TYPE.A, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(60, 6);
  rr.writeUInt16BE(4, 10);
  addr.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
  return Buffer.concat([header, question, rr]);
}

export function questionName(query: Buffer): string {
  return readName(query, 12).name;
}
