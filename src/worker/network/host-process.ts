/**
 * The network driver behind a line protocol, for tests and benchmarks that run one driver per test
 * host: started inside the host's network namespace (`nsenter --net=/run/netns/HOST node host-process.js
 * --prefix P [--resolver PATH] [--upstream IP:PORT]...`), it reads one JSON request per line on stdin,
 * `{"id":1,"op":"apply","state":{...}}` (ops: apply, attach, detach, close, timeAttach) and answers
 * `{"id":1,"ok":true,"result":...}` or `{"id":1,"ok":false,"error":"..."}`. It closes the driver and
 * exits when stdin ends.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createNetworkDriver } from './driver.js';

const { values } = parseArgs({
  options: {
    prefix: { type: 'string' },
    resolver: { type: 'string' },
    upstream: { type: 'string', multiple: true },
  },
});
if (!values.prefix) {
  process.stderr.write('host-process: --prefix is required\n');
  process.exit(2);
}

const driver = createNetworkDriver({
  prefix: values.prefix,
  resolverPath: values.resolver,
  dnsUpstreams: values.upstream ?? [],
  log: { info: (m) => process.stderr.write(`info: ${m}\n`), warn: (m) => process.stderr.write(`warn: ${m}\n`) },
});

interface Request {
  id: number;
  op: 'apply' | 'attach' | 'detach' | 'close';
  state?: Parameters<typeof driver.apply>[0];
  taskId?: string;
  hostname?: string;
  attachments?: Parameters<typeof driver.attach>[2];
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case 'apply': return driver.apply(request.state!);
    case 'attach': {
      // The time the caller's agent would wait, measured where the driver runs.
      const start = process.hrtime.bigint();
      const sandbox = await driver.attach(request.taskId!, request.hostname ?? request.taskId!, request.attachments!);
      return { ...sandbox, ms: Number(process.hrtime.bigint() - start) / 1e6 };
    }
    case 'detach': return driver.detach(request.taskId!);
    case 'close': return driver.close();
    default: throw new Error(`unknown op ${JSON.stringify((request as { op: unknown }).op)}`);
  }
}

const lines = createInterface({ input: process.stdin });
const inFlight = new Set<Promise<void>>();
lines.on('line', (line) => {
  if (!line.trim()) return;
  let request: Request;
  try {
    request = JSON.parse(line) as Request;
  } catch {
    process.stdout.write(`${JSON.stringify({ id: -1, ok: false, error: `not JSON: ${line.slice(0, 80)}` })}\n`);
    return;
  }
  const done = handle(request).then(
    (result) => { process.stdout.write(`${JSON.stringify({ id: request.id, ok: true, result: result ?? null })}\n`); },
    (err: Error) => { process.stdout.write(`${JSON.stringify({ id: request.id, ok: false, error: err.message })}\n`); },
  );
  inFlight.add(done);
  void done.finally(() => inFlight.delete(done));
});
lines.on('close', () => {
  void Promise.all(inFlight).then(() => driver.close()).catch((err: Error) => {
    process.stderr.write(`host-process: close failed: ${err.message}\n`);
    process.exitCode = 1;
  });
});
