// tsswarm-resolver, the overlay sandbox's embedded DNS server, as real processes: the resolver
// listens inside a test network namespace, a client queries it from inside that namespace, and a
// fake upstream (a dgram server on 127.0.0.1 of the root namespace) stands in for the host's
// resolvers — reachable only because the resolver made its upstream socket before entering the
// namespace. No query ever goes to this machine's real resolvers: every resolver here gets
// --upstream 127.0.0.1:<fake> or an empty --upstream-conf.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RCODE, TYPE, decodeMessage, encodeAReply, encodeQuery, questionName, type Message } from './dns-wire.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, '../..');
const RESOLVER = join(REPO, 'native/build/tsswarm-resolver');
const CLIENT = join(here, 'dns-client.mjs');

const NS = `tswt-dns-${process.pid}`;
const NS_PATH = `/run/netns/${NS}`;
const ADDR = '10.213.0.1'; // the resolver's address with an upstream
const ADDR_NO_UP = '10.213.0.2'; // the one without

/** The running resolver: commands on stdin, replies read line by line from stdout. */
class Resolver {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  private lines: string[] = [];
  private wake: (() => void) | null = null;
  stderr = '';

  /** STARTS_IN: a test namespace to start it in (ip netns exec execs it there), else this one. */
  constructor(args: string[], startsIn?: string) {
    const [cmd, argv] = startsIn ? ['ip', ['netns', 'exec', startsIn, RESOLVER, ...args]] : [RESOLVER, args];
    this.proc = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.wake?.();
    });
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((res) => this.proc.on('exit', (code) => res(code)));
  }

  send(...commands: string[]): void {
    this.proc.stdin!.write(commands.map((c) => c + '\n').join(''));
  }

  /** Sends `sync`; resolves with the lines printed before its `ok` (the errors of earlier commands). */
  async sync(): Promise<string[]> {
    this.send('sync');
    for (;;) {
      const i = this.lines.indexOf('ok');
      if (i >= 0) return this.lines.splice(0, i + 1).slice(0, i);
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no ok from the resolver; stderr: ${this.stderr}`)), 5000);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          res();
        };
      });
    }
  }

  rssKb(): number {
    const status = readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
  }
}

/** The client process inside the namespace. */
class Client {
  private proc: ChildProcess;
  private seq = 0;
  private waiting = new Map<number, (r: { hex?: string; timeout?: boolean; error?: string; closed?: boolean }) => void>();

  constructor() {
    this.proc = spawn('ip', ['netns', 'exec', NS, process.execPath, CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    readline.createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      const r = JSON.parse(l);
      this.waiting.get(r.seq)?.(r);
      this.waiting.delete(r.seq);
    });
  }

  /** Writes BYTES on a TCP connection as they are; resolves with all that came back and whether the server closed. */
  tcpRaw(bytes: Buffer, timeout: number): Promise<{ data: Buffer; closed: boolean }> {
    const seq = ++this.seq;
    const req = { seq, proto: 'tcpraw', server: ADDR, port: 53, hex: bytes.toString('hex'), timeout };
    return new Promise((res) => {
      this.waiting.set(seq, (r: any) => res({ data: Buffer.from(r.hex, 'hex'), closed: r.closed }));
      this.proc.stdin!.write(JSON.stringify(req) + '\n');
    });
  }

  /** Sends raw bytes; resolves with the reply's bytes, or null when none came within TIMEOUT ms. */
  raw(bytes: Buffer, opts: { server?: string; proto?: 'udp' | 'tcp'; timeout?: number } = {}): Promise<Buffer | null> {
    const seq = ++this.seq;
    const req = {
      seq,
      proto: opts.proto ?? 'udp',
      server: opts.server ?? ADDR,
      port: 53,
      hex: bytes.toString('hex'),
      timeout: opts.timeout ?? 4000,
    };
    return new Promise((res, rej) => {
      this.waiting.set(seq, (r) => (r.error ? rej(new Error(r.error)) : res(r.hex ? Buffer.from(r.hex, 'hex') : null)));
      this.proc.stdin!.write(JSON.stringify(req) + '\n');
    });
  }

  async query(
    name: string,
    opts: { type?: number; id?: number; rd?: boolean; edns?: number; server?: string; proto?: 'udp' | 'tcp'; timeout?: number } = {},
  ): Promise<Message> {
    const id = opts.id ?? Math.floor(Math.random() * 65536);
    const reply = await this.raw(encodeQuery({ id, name, type: opts.type, rd: opts.rd, edns: opts.edns }), opts);
    if (!reply) throw new Error(`no reply to ${name}`);
    const msg = decodeMessage(reply);
    expect(msg.id).toBe(id);
    expect(msg.qr).toBe(true);
    return msg;
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

/** The fake upstream: answers `cN.up.test` with 198.18.(N>>8).(N&255), stays silent for `silent.*`. */
class FakeUpstream {
  readonly sock = dgram.createSocket('udp4');
  readonly received: { id: number; name: string }[] = [];
  port = 0;

  async start(): Promise<void> {
    this.sock.on('message', (msg, from) => {
      let name: string;
      try {
        name = questionName(msg);
      } catch {
        return; // the resolver forwards only parsed questions; this would be its bug, seen as a timeout
      }
      this.received.push({ id: msg.readUInt16BE(0), name });
      if (name.startsWith('silent.')) return;
      const n = /^c(\d+)\./.exec(name);
      const addr = n ? `198.18.${Number(n[1]) >> 8}.${Number(n[1]) & 255}` : '192.0.2.7';
      // replies out of order, as a real upstream's would come back
      setTimeout(() => this.sock.send(encodeAReply(msg, addr), from.port, from.address), Math.random() * 20);
    });
    await new Promise<void>((res) => this.sock.bind(0, '127.0.0.1', res));
    this.port = this.sock.address().port;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function removeNamespace(): void {
  try {
    ip('netns', 'del', NS);
  } catch {
    // not there
  }
}

function addrs(m: Message): string[] {
  return m.answers.filter((a) => a.type === TYPE.A).map((a) => a.data);
}

describe('tsswarm-resolver', () => {
  const upstream = new FakeUpstream();
  let resolver: Resolver;
  let bare: Resolver; // no upstream
  let client: Client;
  let emptyConf: string;

  beforeAll(async () => {
    execFileSync('make', ['-s', '-C', join(REPO, 'native'), 'build/tsswarm-resolver'], { stdio: 'inherit' });
    removeNamespace();
    ip('netns', 'add', NS);
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    ip('-n', NS, 'addr', 'add', `${ADDR}/32`, 'dev', 'lo');
    ip('-n', NS, 'addr', 'add', `${ADDR_NO_UP}/32`, 'dev', 'lo');
    await upstream.start();
    resolver = new Resolver(['--netns', NS_PATH, '--listen', ADDR, '--upstream', `127.0.0.1:${upstream.port}`]);
    emptyConf = join(mkdtempSync(join(tmpdir(), 'tswt-dns-')), 'resolv.conf');
    writeFileSync(emptyConf, '# no nameserver\n');
    bare = new Resolver(['--netns', NS_PATH, '--listen', `${ADDR_NO_UP}:53`, '--upstream-conf', emptyConf]);
    // the first ok also says the sockets are bound: commands are read only after that
    await resolver.sync();
    await bare.sync();
    client = new Client();
  });

  afterAll(async () => {
    client?.close();
    for (const r of [resolver, bare]) if (r && r.proc.exitCode === null) r.proc.kill('SIGKILL');
    upstream.sock.close();
    if (emptyConf) rmSync(dirname(emptyConf), { recursive: true, force: true });
    removeNamespace();
  });

  it('answers a set name with all its addresses, rotated one position per query, TTL 0, authoritative', async () => {
    resolver.send('set web 10.0.1.2 10.0.1.3 10.0.1.4');
    expect(await resolver.sync()).toEqual([]);
    const orders: string[][] = [];
    for (let i = 0; i < 4; i++) orders.push(addrs(await client.query('web')));
    expect(orders).toEqual([
      ['10.0.1.2', '10.0.1.3', '10.0.1.4'],
      ['10.0.1.3', '10.0.1.4', '10.0.1.2'],
      ['10.0.1.4', '10.0.1.2', '10.0.1.3'],
      ['10.0.1.2', '10.0.1.3', '10.0.1.4'],
    ]);
    const m = await client.query('web', { rd: true });
    expect(m.rcode).toBe(RCODE.NOERROR);
    expect(m.aa).toBe(true);
    expect(m.rd).toBe(true);
    expect(m.ra).toBe(true); // it has an upstream: recursion is available
    expect(m.question).toEqual({ name: 'web', type: TYPE.A });
    expect(m.answers.every((a) => a.ttl === 0 && a.name === 'web')).toBe(true);
  });

  it('busybox nslookup inside the namespace resolves a set name', async () => {
    resolver.send('set tasks.api 10.0.2.5 10.0.2.6');
    await resolver.sync();
    const out = await new Promise<string>((res, rej) => {
      const p = spawn('ip', ['netns', 'exec', NS, 'busybox', 'nslookup', '-type=a', 'tasks.api', ADDR]);
      let s = '';
      p.stdout.on('data', (d) => (s += d));
      p.on('exit', (code) => (code === 0 ? res(s) : rej(new Error(`nslookup exited ${code}: ${s}`))));
    });
    expect(out).toMatch(/Address:\s+10\.0\.2\.5/);
    expect(out).toMatch(/Address:\s+10\.0\.2\.6/);
  });

  it('set, del and clear change the answers as soon as sync says ok; names are case-insensitive', async () => {
    resolver.send('set Svc.Net. 10.0.3.1');
    await resolver.sync();
    expect(addrs(await client.query('svc.net'))).toEqual(['10.0.3.1']);
    expect(addrs(await client.query('SVC.nEt.'))).toEqual(['10.0.3.1']);

    resolver.send('set svc.net 10.0.3.9');
    await resolver.sync();
    expect(addrs(await client.query('svc.net'))).toEqual(['10.0.3.9']);

    resolver.send('del SVC.NET');
    await resolver.sync();
    const gone = await client.query('svc.net');
    expect(addrs(gone)).toEqual(['192.0.2.7']); // not ours any more: the upstream answers
    expect(gone.aa).toBe(false);

    resolver.send('set a1 10.0.3.1', 'set a2 10.0.3.2', 'clear', 'set a3 10.0.3.3');
    await resolver.sync();
    expect(addrs(await client.query('a1'))).toEqual(['192.0.2.7']);
    expect(addrs(await client.query('a2'))).toEqual(['192.0.2.7']);
    expect(addrs(await client.query('a3'))).toEqual(['10.0.3.3']);
    expect(addrs(await client.query('web'))).toEqual(['192.0.2.7']); // cleared too
  });

  it('a bad command prints one error line and changes nothing', async () => {
    resolver.send('set good 10.0.4.1');
    resolver.send('set good 10.0.4.2 not-an-ip', 'set bad..name 10.0.4.3', 'set onlyname', 'frobnicate x', 'del');
    const errors = await resolver.sync();
    expect(errors).toHaveLength(5);
    expect(errors.every((l) => l.startsWith('error '))).toBe(true);
    expect(errors[0]).toContain('not-an-ip');
    expect(addrs(await client.query('good'))).toEqual(['10.0.4.1']);
    expect(resolver.proc.exitCode).toBeNull();
  });

  it('AAAA and other types for a known name: NOERROR without answers', async () => {
    resolver.send('set db 10.0.5.1');
    await resolver.sync();
    for (const type of [TYPE.AAAA, TYPE.MX, TYPE.TXT]) {
      const m = await client.query('db', { type });
      expect(m.rcode).toBe(RCODE.NOERROR);
      expect(m.answers).toEqual([]);
      expect(m.aa).toBe(true);
    }
    const before = upstream.received.length;
    await client.query('db', { type: TYPE.AAAA });
    expect(upstream.received.length).toBe(before); // answered here, not forwarded
  });

  it('relays unknown names to the upstream with rewritten ids, many at once, each reply to its client', async () => {
    const n = 200; // under the ~270 datagrams the fake upstream's default socket buffer holds
    const before = upstream.received.length;
    const ids = Array.from({ length: n }, (_, i) => (i * 7919) & 0xffff);
    const replies = await Promise.all(ids.map((id, i) => client.query(`c${i}.up.test`, { id })));
    replies.forEach((m, i) => {
      expect(m.question?.name).toBe(`c${i}.up.test`);
      expect(addrs(m)).toEqual([`198.18.${i >> 8}.${i & 255}`]);
      expect(m.answers[0]!.ttl).toBe(60); // relayed as the upstream sent it
    });
    const seen = upstream.received.slice(before);
    expect(seen).toHaveLength(n);
    // the upstream never sees the clients' ids: the resolver picks its own
    const sameId = seen.filter((q) => q.id === ids[Number(/^c(\d+)/.exec(q.name)![1])]).length;
    expect(sameId).toBeLessThan(5);
    console.log(`resolver VmRSS after ${n} concurrent forwards: ${resolver.rssKb()} kB`);
  });

  it('upstream silence ends in SERVFAIL after the timeout; past 1024 forwards in flight, SERVFAIL at once', async () => {
    const t0 = Date.now();
    const first = client.query('silent.up.test', { timeout: 5000, edns: 1232 });
    await new Promise((res) => setTimeout(res, 100)); // so that this one holds a slot
    const flood = 1100;
    const started = Date.now();
    const rest = Array.from({ length: flood }, (_, i) =>
      client.query(`silent.q${i}.test`, { timeout: 5000 }).then((m) => ({ m, ms: Date.now() - started })),
    );
    const m = await first;
    const waited = Date.now() - t0;
    expect(m.rcode).toBe(RCODE.SERVFAIL);
    expect(m.question?.name).toBe('silent.up.test');
    expect(waited).toBeGreaterThanOrEqual(1900); // it did wait for the upstream, not fail at once
    expect(m.additional).toBe(1); // the OPT record answers the client's
    const flooded = await Promise.all(rest);
    expect(flooded.every((r) => r.m.rcode === RCODE.SERVFAIL)).toBe(true);
    // the table holds 1024 forwards: this one's and 1023 of the flood; the others are refused at once
    const early = flooded.filter((r) => r.ms < 1500).length;
    expect(early).toBe(flood - 1023);
    // every slot is free again: a forward goes through
    expect(addrs(await client.query('c7.up.test'))).toEqual(['198.18.0.7']);
  });

  it('without an upstream an unknown name is NXDOMAIN, with RD echoed and RA clear', async () => {
    bare.send('set known 10.0.6.1');
    await bare.sync();
    const before = upstream.received.length;
    const m = await client.query('nowhere.test', { server: ADDR_NO_UP, rd: true });
    expect(m.rcode).toBe(RCODE.NXDOMAIN);
    expect(m.rd).toBe(true);
    expect(m.ra).toBe(false);
    expect(m.answers).toEqual([]);
    const norec = await client.query('nowhere.test', { server: ADDR_NO_UP, rd: false });
    expect(norec.rd).toBe(false);
    expect(addrs(await client.query('known', { server: ADDR_NO_UP }))).toEqual(['10.0.6.1']);
    expect(upstream.received.length).toBe(before);
  });

  it('answers over TCP; over UDP a name with more addresses than fit is truncated with TC', async () => {
    const many = Array.from({ length: 100 }, (_, i) => `10.0.7.${i + 1}`);
    resolver.send(`set big ${many.join(' ')}`);
    await resolver.sync();
    const udp = await client.query('big');
    expect(udp.tc).toBe(true);
    expect(udp.answers.length).toBeGreaterThan(10);
    expect(udp.answers.length).toBeLessThan(100);
    const edns = await client.query('big', { edns: 4096 }); // 1232 at most: still not all
    expect(edns.tc).toBe(true);
    expect(edns.answers.length).toBeGreaterThan(udp.answers.length);
    const tcp = await client.query('big', { proto: 'tcp' });
    expect(tcp.tc).toBe(false);
    expect(new Set(addrs(tcp))).toEqual(new Set(many));
    const fwd = await client.query('c5.up.test', { proto: 'tcp' }); // forwarded over UDP, answered over TCP
    expect(addrs(fwd)).toEqual(['198.18.0.5']);
  });

  it('drops garbage and malformed questions, never answers a response, and keeps serving', async () => {
    const q = encodeQuery({ id: 0x1234, name: 'web.test' });
    const header = (qd: number, flags = 0x0100) => {
      const h = Buffer.alloc(12);
      h.writeUInt16BE(0x4242, 0);
      h.writeUInt16BE(flags, 2);
      h.writeUInt16BE(qd, 4);
      return h;
    };
    const garbage: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from([1, 2, 3]),
      q.subarray(0, 11), // short header
      q.subarray(0, q.length - 3), // question cut short
      Buffer.concat([header(1), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), // pointer to itself
      Buffer.concat([header(1), Buffer.from([1, 0x61, 0xc0, 12, 0, 1, 0, 1])]), // a loop through itself
      Buffer.concat([header(1), Buffer.from([0xc0, 20, 0, 1, 0, 1, 0, 0, 0, 0, 0])]), // forward pointer
      Buffer.concat([header(1), Buffer.from([0xc0, 2, 0, 1, 0, 1])]), // pointer into the header
      Buffer.concat([header(1), Buffer.from([0xff, 0xff])]), // pointer past the end
      Buffer.concat([header(1), Buffer.from([63, 0x61, 0x62])]), // label past the end
      Buffer.concat([header(1), Buffer.from([0x41, 0x61, 0, 0, 1, 0, 1])]), // extended label type
      Buffer.concat([header(1), Buffer.alloc(300, 5)]), // a name longer than 255
      Buffer.concat([header(0), Buffer.from([0, 0, 1, 0, 1])]), // no question
      Buffer.concat([header(2), encodeQuery({ id: 1, name: 'web' }).subarray(12)]), // two questions, one given
      Buffer.concat([header(1, 0x8180), encodeQuery({ id: 1, name: 'web' }).subarray(12)]), // a response
    ];
    for (let i = 0; i < 200; i++) garbage.push(Buffer.from(Array.from({ length: (i * 37) % 600 }, () => (Math.random() * 256) | 0)));
    // valid queries with a few bytes changed reach deeper: counts, labels, the OPT record
    const valid = encodeQuery({ id: 7, name: 'web.svc.test', edns: 1232 });
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(valid);
      for (let k = 0; k < 1 + (i % 4); k++) m[(Math.random() * m.length) | 0] = (Math.random() * 256) | 0;
      garbage.push(m);
    }
    const replies = await Promise.all(garbage.map((g) => client.raw(g, { timeout: 500 })));
    const answered = replies.filter((r) => r !== null).map((r) => decodeMessage(r!));
    // random bytes may happen to form a valid query; none of the crafted ones may be answered
    expect(replies.slice(0, 15)).toEqual(new Array(15).fill(null));
    expect(answered.every((m) => m.qr)).toBe(true);
    expect(resolver.proc.exitCode).toBeNull();
    resolver.send('set alive 10.0.8.1');
    await resolver.sync();
    expect(addrs(await client.query('alive'))).toEqual(['10.0.8.1']);
  });

  it('with several upstreams, a dead first one hands over to the next within the timeout', async () => {
    const dead = dgram.createSocket('udp4');
    await new Promise<void>((res) => dead.bind(0, '127.0.0.1', res));
    const deadPort = dead.address().port;
    dead.close(); // nothing listens there now: the kernel answers port unreachable
    const extra = '10.213.0.4';
    ip('-n', NS, 'addr', 'add', `${extra}/32`, 'dev', 'lo');
    const r = new Resolver([
      '--netns', NS_PATH, '--listen', extra,
      '--upstream', `127.0.0.1:${deadPort}`, '--upstream', `127.0.0.1:${upstream.port}`,
    ]);
    try {
      await r.sync();
      const before = upstream.received.length;
      const m = await client.query('c300.up.test', { server: extra, timeout: 5000 });
      expect(m.rcode).toBe(RCODE.NOERROR);
      expect(addrs(m)).toEqual(['198.18.1.44']);
      expect(upstream.received.slice(before).map((q) => q.name)).toEqual(['c300.up.test']);
    } finally {
      r.proc.stdin!.end();
      await r.exited;
    }
  });

  it('over TCP: pipelined queries all answered, an oversized or cut message closes only that connection', async () => {
    resolver.send('set pipe 10.0.10.1');
    await resolver.sync();
    const frame = (q: Buffer) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
    const two = Buffer.concat([frame(encodeQuery({ id: 1, name: 'pipe' })), frame(encodeQuery({ id: 2, name: 'pipe', type: TYPE.AAAA }))]);
    const got = await client.tcpRaw(two, 500);
    const first = decodeMessage(got.data.subarray(2, 2 + got.data.readUInt16BE(0)));
    const rest = got.data.subarray(2 + got.data.readUInt16BE(0));
    const second = decodeMessage(rest.subarray(2, 2 + rest.readUInt16BE(0)));
    expect([first.id, addrs(first)]).toEqual([1, ['10.0.10.1']]);
    expect([second.id, second.answers]).toEqual([2, []]);

    const huge = await client.tcpRaw(Buffer.from([0xff, 0xff, 1, 2, 3]), 2000);
    expect(huge).toEqual({ data: Buffer.alloc(0), closed: true });
    const cut = await client.tcpRaw(frame(encodeQuery({ id: 3, name: 'pipe' })).subarray(0, 9), 300);
    expect(cut.data.length).toBe(0);
    expect(addrs(await client.query('pipe', { proto: 'tcp' }))).toEqual(['10.0.10.1']);
  });

  it('takes its upstreams from --upstream-conf, through sockets made in the namespace it started in', async () => {
    // The resolver starts in a second test namespace (standing in for the daemon's), whose
    // 127.0.0.1:53 is a fake upstream; nothing of this exists in the root namespace.
    const upNs = `tswt-dns-up-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), 'tswt-dns-'));
    const conf = join(dir, 'resolv.conf');
    // ::1 first: nothing listens there, so the resolver moves on to 127.0.0.1
    writeFileSync(conf, '# written by the test\nsearch example.test\nnameserver ::1\nnameserver 127.0.0.1\noptions ndots:0\n');
    const extra = '10.213.0.5';
    let fake: ChildProcess | undefined;
    let r: Resolver | undefined;
    try {
      ip('netns', 'add', upNs);
      ip('-n', upNs, 'link', 'set', 'lo', 'up');
      ip('-n', NS, 'addr', 'add', `${extra}/32`, 'dev', 'lo');
      fake = spawn('ip', ['netns', 'exec', upNs, process.execPath, join(here, 'dns-upstream.mjs'), '127.0.0.1', '53', '192.0.2.53'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      await new Promise<void>((res, rej) => {
        fake!.stdout!.once('data', () => res());
        fake!.once('exit', (code) => rej(new Error(`fake upstream exited ${code}`)));
      });
      r = new Resolver(['--netns', NS_PATH, '--listen', extra, '--upstream-conf', conf], upNs);
      await r.sync();
      const m = await client.query('anything.example', { server: extra, timeout: 3000 });
      expect(addrs(m)).toEqual(['192.0.2.53']);
    } finally {
      if (r && r.proc.exitCode === null) {
        r.proc.stdin!.end();
        await r.exited;
      }
      fake?.stdin!.end();
      rmSync(dir, { recursive: true, force: true });
      try {
        ip('netns', 'del', upNs);
      } catch {
        // not made
      }
    }
  });

  it('stays small', () => {
    const idle = bare.rssKb(); // a handful of queries served
    const busy = resolver.rssKb(); // after 1024 forwards in flight and 100-address answers
    console.log(`RESULT ${JSON.stringify({ resolver_vmrss_kb_idle: idle, resolver_vmrss_kb_after_load: busy })}`);
    expect(idle).toBeLessThan(2048);
    expect(busy).toBeLessThan(4096);
  });

  it('refuses bad arguments with one line naming what is wrong', () => {
    const run = (args: string[]) => {
      try {
        execFileSync(RESOLVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        return { status: 0, stderr: '' };
      } catch (e: any) {
        return { status: e.status as number, stderr: String(e.stderr) };
      }
    };
    const up = ['--upstream', `127.0.0.1:${upstream.port}`];
    for (const [args, what] of [
      [['--netns', NS_PATH, '--listen', 'not-an-ip', ...up], '--listen not-an-ip'],
      [['--netns', NS_PATH, '--listen', `${ADDR}:99999`, ...up], '--listen'],
      [['--netns', '/run/netns/tswt-dns-missing', '--listen', ADDR, ...up], '/run/netns/tswt-dns-missing'],
      [['--netns', NS_PATH, '--listen', ADDR, '--upstream', 'x'], '--upstream x'],
      [['--netns', NS_PATH, '--listen', ADDR, '--upstream-conf', '/nonexistent/resolv.conf'], '/nonexistent'],
      [['--listen', ADDR, ...up], 'usage'],
      [['--netns', NS_PATH, '--listen', ADDR, '--bogus', 'x', ...up], '--bogus'],
    ] as [string[], string][]) {
      const r = run(args);
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(what);
    }
  });

  it('exits cleanly when stdin closes, and its address is free again', async () => {
    const extra = '10.213.0.3';
    ip('-n', NS, 'addr', 'add', `${extra}/32`, 'dev', 'lo');
    const r = new Resolver(['--netns', NS_PATH, '--listen', extra, '--upstream', `127.0.0.1:${upstream.port}`]);
    try {
      r.send('set x 10.0.9.1');
      await r.sync();
      expect(addrs(await client.query('x', { server: extra }))).toEqual(['10.0.9.1']);
      r.proc.stdin!.end();
      expect(await r.exited).toBe(0);
      expect(await client.raw(encodeQuery({ id: 9, name: 'x' }), { server: extra, timeout: 300 })).toBeNull();
      // its sockets are closed: a new resolver binds the same address and port
      const again = new Resolver(['--netns', NS_PATH, '--listen', extra, '--upstream', `127.0.0.1:${upstream.port}`]);
      again.proc.stdin!.end();
      expect(await again.exited).toBe(0);
      expect(again.stderr).toBe('');
    } finally {
      if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    }
  });
});
