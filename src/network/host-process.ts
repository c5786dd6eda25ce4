/**
 * The network driver behind a line protocol, for tests and benchmarks that run one driver per test
 * host: started inside the host's network namespace (`nsenter --net=/run/netns/HOST node host-process.js
 * --prefix P [--resolver PATH] [--netattach PATH] [--upstream IP:PORT]...`), it reads one JSON request per line on stdin,
 * `{"id":1,"op":"apply","state":{...}}` (ops: apply, attach, detach, close, and bridge.connect,
 * bridge.disconnect, bridge.close for a single-host bridge network) and answers
 * `{"id":1,"ok":true,"result":...}` or `{"id":1,"ok":false,"error":"..."}`. It closes the driver and
 * exits when stdin ends.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { BridgeNetwork, type PortMapping } from './bridge-network.js';
import { runTool } from './commands.js';
import { createNetworkDriver } from './driver.js';

const { values } = parseArgs({
  options: {
    prefix: { type: 'string' },
    resolver: { type: 'string' },
    netattach: { type: 'string' },
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
  netattachPath: values.netattach,
  dnsUpstreams: values.upstream ?? [],
  log: { info: (m) => process.stderr.write(`info: ${m}\n`), warn: (m) => process.stderr.write(`warn: ${m}\n`) },
});

const bridges = new Map<number, BridgeNetwork>();
function bridgeNetwork(spec: { index: number; subnet: string }): BridgeNetwork {
  let network = bridges.get(spec.index);
  if (!network) bridges.set(spec.index, network = new BridgeNetwork({ prefix: values.prefix!, ...spec }));
  return network;
}

interface Request {
  id: number;
  op: 'apply' | 'attach' | 'detach' | 'close' | 'spawnFloor' | 'bridge.connect' | 'bridge.disconnect' | 'bridge.close';
  bridge?: { index: number; subnet: string };
  ports?: PortMapping[];
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
    case 'bridge.connect': return bridgeNetwork(request.bridge!).connect(request.taskId!, request.hostname ?? request.taskId!, request.ports ?? []);
    case 'bridge.disconnect': return bridgeNetwork(request.bridge!).disconnect(request.taskId!);
    case 'bridge.close': return bridgeNetwork(request.bridge!).close();
    case 'spawnFloor': {
      // What one process costs from here (a spawn of /bin/true, and of ip with a one-line batch):
      // the floor under attach, which needs one process tree.
      const time = async (f: () => Promise<unknown>) => { const t = process.hrtime.bigint(); await f(); return Number(process.hrtime.bigint() - t) / 1e6; };
      return {
        trueMs: await time(() => runTool('probe', '/bin/true', [])),
        ipMs: await time(() => runTool('probe', 'ip', ['-batch', '-'], 'link show lo\n')),
      };
    }
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
  void Promise.all(inFlight).then(() => Promise.all([driver.close(), ...[...bridges.values()].map((b) => b.close())])).catch((err: Error) => {
    process.stderr.write(`host-process: close failed: ${err.message}\n`);
    process.exitCode = 1;
  });
});
