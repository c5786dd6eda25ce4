/**
 * native/build/tsswarm-run, the native front of `tsswarm run` (native/cli/run-front.c), against the
 * Node CLI:
 * - read the same way: for any command line the front takes on, it must send exactly the request the
 *   Node CLI would send, and a command line the Node CLI refuses must never be taken on by the front
 *   (fast-check over option spellings, repeated options and odd values);
 * - behave the same way on one real daemon: output, exit codes and error lines.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PROTO_DIR } from '../../src/rpc/proto.js';
import type { DaemonClient } from '../../src/cli/client.js';
import { runCli } from '../../src/cli/program.js';
import { CLI, daemonWithImage, REPO, runProcess, TestDaemon, waitFor, type CliResult } from './harness.js';

const FRONT = join(REPO, 'native/build/tsswarm-run');
const RunRequest = protobuf.loadSync(join(PROTO_DIR, 'node.proto')).lookupType('tsswarm.node.v1.ContainerRunRequest');
const AS_OBJECT = { longs: Number, defaults: true, arrays: true, objects: true } as const;
// What `-e KEY` (no value) reads from the environment, in this process and in the front alike.
process.env.TSSWARM_FRONT_TEST_VAR = 'from-env';

/** What the front would do with `args`: hand them to Node, or send this request to this socket. */
function frontReads(args: string[]): 'node' | object {
  const r = spawnSync(FRONT, args, { encoding: 'utf8', env: { ...process.env, TSSWARM_RUN_FRONT_PRINT: '1' } });
  if (r.status !== 0) throw new Error(`tsswarm-run ${JSON.stringify(args)} exited ${r.status}: ${r.stderr}`);
  const out = r.stdout.trim();
  if (out === 'node') return 'node';
  const m = /^native (\S+) ([0-9a-f]*)$/.exec(out);
  if (!m) throw new Error(`tsswarm-run printed ${JSON.stringify(out)}`);
  return { socket: m[1], request: RunRequest.toObject(RunRequest.decode(Buffer.from(m[2]!, 'hex')), AS_OBJECT) };
}

/** What the Node CLI (the program bin/tsswarm runs) sends for `args`, and to which socket; or 'refused'. */
async function nodeReads(args: string[]): Promise<'refused' | object> {
  let sent: object | undefined;
  const client = (address: string) => ({
    stream: async function* (_method: string, request: object) {
      sent = { socket: address.replace(/^unix:/, ''), request: RunRequest.toObject(RunRequest.fromObject(request), AS_OBJECT) };
    },
    close: () => {},
  }) as unknown as DaemonClient;
  const saved = process.exitCode;
  process.exitCode = 0;
  // Usage errors and help go to the terminal: keep the test's output clean.
  const muted = [vi.spyOn(process.stderr, 'write').mockImplementation(() => true), vi.spyOn(process.stdout, 'write').mockImplementation(() => true)];
  try {
    await runCli(args, client);
  } finally {
    for (const m of muted) m.mockRestore();
  }
  const code = process.exitCode;
  process.exitCode = saved;
  return code === 0 && sent ? sent : 'refused';
}

const ODD = ['', '-x', ' 64m', '64 m', '1e3', '0x10', '-1', '-0', '0', '007', '1.', '.5', '99999999999999999999', 'a=b=c', '__proto__=x',
  'TSSWARM_FRONT_TEST_VAR', 'TSSWARM_FRONT_TEST_UNSET', 'on-failure:3:4', ':', '/a:', 'rel:/b', '/a:/b:x', '/a:/b:c:d', '80', '0:80'];
const VALUES: Record<string, string[]> = {
  name: ['web', 'a-b_c'], env: ['A=1', 'A=', 'B=x=y'], memory: ['64m', '1.5g', '512k', '64MiB', '64mb', '64ib', '100b', '2T', '0', 'lots'],
  cpus: ['0.5', '2', '1.25', '0.0000000001', '0'], 'pids-limit': ['50', '-1', '-2', '007'], hostname: ['h1'],
  restart: ['no', 'always', 'unless-stopped', 'on-failure', 'on-failure:3', 'always:2', 'sometimes', 'on-failure:x'],
  volume: ['/srv:/data', '/srv:/data:ro', '/srv:/data:rw'], network: ['none', 'host', 'bridge', 'overlay1'],
  publish: ['8080:80', '53:53/udp', '1:65535', '80:80/TCP', '0:80', '65536:1', '00080:0080'], entrypoint: ['/bin/sh', ''],
  workdir: ['/tmp'], user: ['1000:1000', 'nobody'], 'stop-signal': ['SIGINT'], 'stop-timeout': ['0', '30', '-1', '4294967296'],
  label: ['k=v', 'k', 'k=', 'a.b=c d'],
};
const SHORT: Record<string, string> = { env: 'e', memory: 'm', hostname: 'h', volume: 'v', publish: 'p', workdir: 'w', user: 'u', label: 'l' };

/** One option as a user might write it: long, long with =, short; mostly with a usual value, else an odd one. */
const option = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(['-d'], ['--detach'], ['--rm'], ['--read-only'], ['--rm=1'], ['-dm', '64m'], ['-m64m'], ['--bogus'], ['-'], ['--help']) },
  {
    weight: 5,
    arbitrary: fc.tuple(fc.constantFrom(...Object.keys(VALUES)),
      fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...Object.values(VALUES).flat()) }, { weight: 1, arbitrary: fc.constantFrom(...ODD) }, { weight: 1, arbitrary: fc.string() }),
      fc.constantFrom('long', 'equals', 'short')).map(([name, value, form]) => {
      if (form === 'equals') return [`--${name}=${value}`];
      if (form === 'short' && SHORT[name]) return [`-${SHORT[name]}`, value];
      return [`--${name}`, value];
    }),
  },
);
const globalOptions = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom([], ['-H', 'unix:///tmp/a.sock'], ['--host=/tmp/b.sock'], ['--host', 'unix:///tmp/c.sock', '--format', 'json']) },
  { weight: 1, arbitrary: fc.constantFrom(['--format=xml'], ['-H', 'tcp://10.0.0.1:2375'], ['-H', ''], ['--bogus'], ['--version'], ['-H']) },
);
const commandLine = fc.tuple(globalOptions, fc.constantFrom(['run'], ['container', 'run'], ['run'], ['container', 'create']), fc.array(option, { maxLength: 4 }),
  fc.boolean(), fc.constantFrom(['img'], ['bb:1', 'sh', '-c', 'exit 3'], ['img', '--rm', '-d'], []))
  .map(([global, command, options, dashDash, rest]) => [...global, ...command, ...options.flat(), ...(dashDash ? ['--'] : []), ...rest]);

describe('the native run front reads command lines as the Node CLI does', () => {
  it.skipIf(!existsSync(FRONT))('takes on only what the Node CLI accepts, and then sends the same request', async () => {
    let native = 0;
    await fc.assert(fc.asyncProperty(commandLine, async (args) => {
      const front = frontReads(args);
      if (front === 'node') return;
      native++;
      expect(await nodeReads(args)).toEqual(front);
    }), { numRuns: 600 });
    expect(native).toBeGreaterThan(40); // the generator is not all refusals
  });

  it.skipIf(!existsSync(FRONT))('takes on the usual command lines itself and leaves the rest to Node', async () => {
    const usual = [
      ['run', '--rm', 'img', 'true'], ['run', '-d', '--name', 'web', '-p', '8080:80', 'img'], ['container', 'run', '-it=no', 'img'],
      ['-H', 'unix:///tmp/x.sock', 'run', '-e', 'A=1', '-m', '64m', '--cpus', '0.5', '--restart', 'on-failure:3', 'img', 'sh', '-c', 'x'],
      ['--host=/tmp/x.sock', '--format', 'json', 'container', 'run', '-v', '/a:/b:ro', '-l', 'k=v', '--', 'img', '--rm'],
    ];
    expect(usual.map(frontReads).map((r) => (r === 'node' ? 'node' : 'native'))).toEqual(['native', 'native', 'node', 'native', 'native']);
    for (const args of [['ps'], ['service', 'create', '--name', 'run', 'img'], ['--version'], ['run', '--help'], ['-H', 'tcp://1.2.3.4:1', 'run', 'img'],
      ['container', 'ls', 'run'], ['run'], ['run', '--memory', 'lots', 'img']]) {
      expect(frontReads(args), args.join(' ')).toBe('node');
    }
    // The request carries the host's value for `-e KEY`, as the Node CLI does.
    expect(frontReads(['run', '-e', 'TSSWARM_FRONT_TEST_VAR', 'img'])).toMatchObject({ request: { spec: { env: ['TSSWARM_FRONT_TEST_VAR=from-env'] } } });
  });
});

const IMAGE = 'test/busybox:1';
let daemon: TestDaemon;
let scratch: string;

const exec = (file: string, args: string[]) => runProcess(file, args);

/** bin/tsswarm as a shell runs it (the front for `run`), and the Node CLI for the same arguments. */
async function both(args: string[]): Promise<[front: CliResult, node: CliResult]> {
  const argv = ['-H', `unix://${daemon.socket}`, ...args];
  return [await exec(CLI, argv), await exec(process.execPath, [CLI, ...argv])];
}

describe.skipIf(!existsSync(FRONT))('the native run front on a real daemon', () => {
  let destroy: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ daemon, scratch, destroy } = await daemonWithImage('front', IMAGE));
  });

  afterAll(async () => {
    await destroy?.();
  });

  it('streams both outputs and passes the exit code through', async () => {
    const [front, node] = await both(['run', '--rm', IMAGE, 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(front).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    expect(front).toEqual(node);
  });

  it('carries a large output intact (HTTP/2 flow control)', async () => {
    // 4 MiB: beyond the default 64 KiB windows, so the stream depends on WINDOW_UPDATEs.
    const [front] = await both(['run', '--rm', IMAGE, 'sh', '-c', 'yes 0123456789abcdef | head -c 4194304']);
    expect(front.code).toBe(0);
    expect(front.stdout.length).toBe(4194304);
    expect(front.stdout.replaceAll('0123456789abcdef\n', '')).toBe('0123456789abcdef\n'.slice(0, 4194304 % 17));
  });

  it('prints the id with -d, and the container runs with every setting the Node CLI would give it', async () => {
    const flags = ['-d', '-e', 'A=1', '-l', 'k=v', '-m', '64m', '--cpus', '0.5', '--pids-limit', '50', '--restart', 'on-failure:2',
      '-v', `${scratch}:/data:ro`, '-w', '/tmp', '--stop-timeout', '3', IMAGE, 'sleep', '60'];
    const front = await exec(CLI, ['-H', `unix://${daemon.socket}`, 'run', '--name', 'by-front', ...flags]);
    const node = await exec(process.execPath, [CLI, '-H', `unix://${daemon.socket}`, 'run', '--name', 'by-node', ...flags]);
    expect(front.code, front.stderr).toBe(0);
    expect(front.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const inspect = async (name: string) => JSON.parse(await daemon.ok(['container', 'inspect', name]))[0];
    const [a, b] = [await inspect('by-front'), await inspect('by-node')];
    expect(a.id).toBe(front.stdout.trim());
    expect(a.state.status).toBe('running');
    // The daemon names the host after the container's id when -h is not given.
    expect({ ...a.spec, name: '', hostname: '' }).toEqual({ ...b.spec, name: '', hostname: '' });
    expect(a.spec).toMatchObject({ memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, restart: { name: 'on-failure', maxRetries: 2 } });
  });

  it('fails as the Node CLI does: the same line on stderr, exit code 125', async () => {
    await daemon.ok(['run', '-d', '--name', 'taken', IMAGE, 'sleep', '60']);
    for (const args of [['run', '--name', 'taken', IMAGE, 'true'], ['run', '--rm', '127.0.0.1:9/no/such:image', 'true'], ['run', '--memory', 'lots', IMAGE],
      ['run', '--bogus', IMAGE], ['run']]) {
      const [front, node] = await both(args);
      expect(front.code, args.join(' ')).toBe(125);
      expect(front).toEqual(node);
      expect(front.stderr).toMatch(/^tsswarm: [^\n]+\n$/);
    }
  });

  it('says the daemon was lost, not that it cannot be reached, when it dies during a run', async () => {
    const argv = ['-H', `unix://${daemon.socket}`, 'run', '--rm', IMAGE, 'sleep', '5'];
    const runs = [exec(CLI, argv), exec(process.execPath, [CLI, ...argv])];
    await waitFor('both containers running', async () => {
      const ps = await daemon.cli(['ps', '--format', 'json']);
      return JSON.parse(ps.stdout || '[]').filter((c: { command: string[] }) => c.command.join(' ') === 'sleep 5').length === 2 || undefined;
    });
    await daemon.crash();
    for (const r of await Promise.all(runs)) {
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`^tsswarm: lost the connection to the tsswarm daemon at unix://${daemon.socket} \\(.+\\); ` +
        'what it was doing may go on without us \\(see tsswarm ps -a\\)\\n$'));
    }
    await daemon.start(); // adopts the containers; afterAll removes them
  });

  it('names the socket when no daemon listens there', async () => {
    const missing = join(scratch, 'nobody.sock');
    const front = await exec(CLI, ['-H', `unix://${missing}`, 'run', '--rm', IMAGE, 'true']);
    expect(front.code).toBe(125);
    expect(front.stderr).toMatch(new RegExp(`^tsswarm: cannot connect to the tsswarm daemon at unix://${missing}: is it running\\? \\(.+\\)\\n$`));
    expect(front.stdout).toBe('');
  });
});
