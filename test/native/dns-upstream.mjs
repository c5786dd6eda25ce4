// A fake upstream for the resolver tests, run inside a test network namespace (ip netns exec):
// `node dns-upstream.mjs HOST PORT ADDR` answers every query with one A record ADDR (TTL 60),
// and prints "ready" once bound. It only ever sees questions the resolver has already parsed.
import dgram from 'node:dgram';

const [host, port, addr] = process.argv.slice(2);
const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
sock.on('message', (q, from) => {
  let end = 12;
  while (end < q.length && q[end] !== 0) end += 1 + q[end];
  const question = q.subarray(12, end + 5);
  const header = Buffer.from(q.subarray(0, 12));
  header.writeUInt16BE(0x8080 | (q.readUInt16BE(2) & 0x0100), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(1, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...addr.split('.').map(Number)]);
  sock.send(Buffer.concat([header, question, rr]), from.port, from.address);
});
sock.bind(Number(port), host, () => process.stdout.write('ready\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
