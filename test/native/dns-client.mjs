// A DNS client for the resolver tests, run inside the test's network namespace (ip netns exec):
// it only moves bytes. stdin: one JSON request a line {seq, proto: "udp"|"tcp"|"tcpraw", server,
// port, hex, timeout}; stdout: {seq, hex} with the reply, or {seq, timeout: true}. Each UDP request uses its
// own socket, so concurrent requests come from distinct client addresses.
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function udp(req) {
  const sock = dgram.createSocket('udp4');
  const timer = setTimeout(() => {
    sock.close();
    reply({ seq: req.seq, timeout: true });
  }, req.timeout);
  sock.on('message', (msg) => {
    clearTimeout(timer);
    sock.close();
    reply({ seq: req.seq, hex: msg.toString('hex') });
  });
  sock.send(Buffer.from(req.hex, 'hex'), req.port, req.server);
}

function tcp(req) {
  const sock = net.connect(req.port, req.server);
  let buf = Buffer.alloc(0);
  let done = false;
  const finish = (obj) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sock.destroy();
    reply(obj);
  };
  const timer = setTimeout(() => finish({ seq: req.seq, timeout: true }), req.timeout);
  sock.on('connect', () => {
    const q = Buffer.from(req.hex, 'hex');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(q.length);
    sock.write(Buffer.concat([len, q]));
  });
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      finish({ seq: req.seq, hex: buf.subarray(2, 2 + buf.readUInt16BE(0)).toString('hex') });
    }
  });
  sock.on('error', (e) => finish({ seq: req.seq, error: String(e) }));
}

// Raw bytes over TCP, no framing: replies with everything received until the server closes the
// connection ({closed: true}) or the timeout passes.
function tcpRaw(req) {
  const sock = net.connect(req.port, req.server);
  let buf = Buffer.alloc(0);
  let done = false;
  const finish = (closed) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sock.destroy();
    reply({ seq: req.seq, hex: buf.toString('hex'), closed });
  };
  const timer = setTimeout(() => finish(false), req.timeout);
  sock.on('connect', () => sock.write(Buffer.from(req.hex, 'hex')));
  sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
  sock.on('end', () => finish(true));
  sock.on('error', () => finish(true));
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line);
  ({ udp, tcp, tcpraw: tcpRaw })[req.proto](req);
});
process.stdin.on('end', () => process.exit(0));
