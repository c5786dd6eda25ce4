/** `tsswarm container ...` (and the docker-style shortcuts `run`, `ps`, `exec`, `logs`). */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { ContainerRecord, ContainerSpec } from '../api/container.js';
import { formatAgo, parseBytes, parseDurationMs, parseInteger, parseNanoCpus, UsageError } from './units.js';
import { printJson, printTable, shortId, truncate, type OutputFormat } from './format.js';
import type { DaemonClient } from './client.js';

type Connect = () => DaemonClient;
const collect = (v: string, prev: string[]) => [...prev, v];

interface RunFlags {
  detach?: boolean; rm?: boolean; name?: string; env: string[]; memory?: string; cpus?: string; pidsLimit?: string;
  hostname?: string; restart?: string; volume: string[]; network?: string; entrypoint?: string; workdir?: string;
  user?: string; readOnly?: boolean; stopSignal?: string; stopTimeout?: string; label: string[]; publish: string[]; pull?: string;
  securityOpt: string[];
}

function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'assign a name to the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect, [])
    .option('-m, --memory <bytes>', 'memory limit (e.g. 64m)')
    .option('--cpus <number>', 'number of CPUs (e.g. 0.5)')
    .option('--pids-limit <n>', 'limit on the number of processes')
    .option('-h, --hostname <name>', 'container host name')
    .option('--restart <policy>', 'restart policy: no, on-failure[:N], always, unless-stopped')
    .option('-v, --volume <SRC:DST[:ro]>', 'bind-mount a host path', collect, [])
    .option('--network <name>', 'network: none, host, bridge, or an attachable swarm network (default: none; bridge with -p)')
    .option('-p, --publish <HOST:CONTAINER[/udp]>', 'publish a container port on the bridge network', collect, [])
    .option('--entrypoint <cmd>', 'override the image entrypoint ("" clears it)')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid (and group) to run as')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--security-opt <option>', 'seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]', collect, [])
    .option('--stop-signal <signal>', 'signal that stops the container')
    .option('--stop-timeout <seconds>', 'seconds to wait before SIGKILL on stop')
    .option('-l, --label <KEY=VALUE>', 'set a label', collect, [])
    .argument('<image>', 'image name or id')
    .argument('[command...]', 'command and arguments')
    .passThroughOptions();
}

export function specFromFlags(image: string, command: string[], o: RunFlags): Partial<ContainerSpec> {
  let restart: ContainerSpec['restart'] = { name: 'no', maxRetries: 0 };
  if (o.restart) {
    const [name = '', retries] = o.restart.split(':');
    if (!['no', 'on-failure', 'always', 'unless-stopped'].includes(name)) {
      throw new UsageError(`invalid restart policy "${o.restart}": expected no, on-failure[:N], always or unless-stopped`);
    }
    if (retries !== undefined && name !== 'on-failure') throw new UsageError(`invalid restart policy "${o.restart}": only on-failure takes a retry count`);
    restart = { name: name as ContainerSpec['restart']['name'], maxRetries: retries === undefined ? 0 : parseInteger('--restart', retries, 0) };
  }
  const mounts = o.volume.map((v) => {
    const parts = v.split(':');
    if (parts.length < 2 || parts.length > 3 || (parts[2] !== undefined && !['ro', 'rw'].includes(parts[2]))) {
      throw new UsageError(`invalid volume "${v}": expected /host/path:/container/path[:ro]`);
    }
    if (!parts[0]!.startsWith('/')) throw new UsageError(`invalid volume "${v}": the source must be an absolute host path (named volumes are not supported)`);
    return { source: parts[0]!, target: parts[1]!, readOnly: parts[2] === 'ro' };
  });
  const labels: Record<string, string> = {};
  for (const l of o.label) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return {
    name: o.name ?? '',
    image,
    cmd: command,
    entrypoint: o.entrypoint === undefined ? [] : o.entrypoint === '' ? [] : [o.entrypoint],
    entrypointSet: o.entrypoint !== undefined,
    env: o.env.map((e) => (e.includes('=') ? e : `${e}=${process.env[e] ?? ''}`)),
    workingDir: o.workdir ?? '',
    user: o.user ?? '',
    hostname: o.hostname ?? '',
    memoryBytes: o.memory ? parseBytes('--memory', o.memory) : 0,
    nanoCpus: o.cpus ? parseNanoCpus('--cpus', o.cpus) : 0,
    pidsLimit: o.pidsLimit ? parseInteger('--pids-limit', o.pidsLimit, -1) : 0,
    restart,
    mounts,
    // As docker: publishing a port implies the bridge network.
    network: o.network ?? (o.publish.length > 0 ? 'bridge' : 'none'),
    ports: o.publish.map(parsePortMapping),
    autoRemove: o.rm ?? false,
    readOnly: o.readOnly ?? false,
    securityOpt: (o.securityOpt ?? []).map(readSecurityOpt),
    stopSignal: o.stopSignal ?? '',
    stopTimeout: o.stopTimeout ? parseInteger('--stop-timeout', o.stopTimeout, 0) : 10,
    labels,
  };
}

/** As docker's CLI: `seccomp=FILE` is sent as the file's text, read here on the client's side. */
function readSecurityOpt(opt: string): string {
  const m = /^seccomp[=:](.*)$/s.exec(opt);
  if (!m || m[1] === 'unconfined' || m[1]!.trimStart().startsWith('{')) return opt;
  try {
    return `seccomp=${readFileSync(m[1]!, 'utf8')}`;
  } catch (e) {
    throw new UsageError(`--security-opt ${opt}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

function parsePortMapping(spec: string): ContainerSpec['ports'][number] {
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  const valid = (n: number) => n >= 1 && n <= 65535;
  if (!m || !valid(Number(m[1])) || !valid(Number(m[2]))) throw new UsageError(`invalid -p ${spec}: expected HOST_PORT:CONTAINER_PORT[/tcp|udp]`);
  return { protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp', hostPort: Number(m[1]), containerPort: Number(m[2]) };
}

function statusText(c: ContainerRecord): string {
  const s = c.state;
  const since = (t: string) => formatAgo(t).replace(/ ago$/, '');
  switch (s.status) {
    case 'running': return `Up ${since(s.startedAt)}`;
    case 'paused': return `Up ${since(s.startedAt)} (Paused)`;
    case 'restarting': return `Restarting (${s.exitCode}) ${formatAgo(s.finishedAt)}`;
    case 'exited': return `Exited (${s.exitCode}) ${formatAgo(s.finishedAt)}`;
    case 'dead': return 'Dead';
    default: return 'Created';
  }
}

function writeOutput(stream: string, data: Buffer | Uint8Array): void {
  (stream === 'stderr' ? process.stderr : process.stdout).write(data);
}

/** `run`: one streamed call; exits with the container's code, or 125 when the daemon refused. */
async function runContainer(connect: Connect, image: string, command: string[], o: RunFlags): Promise<number> {
  const spec = specFromFlags(image, command, o);
  const client = connect();
  let exitCode = 0;
  let id = '';
  // Ctrl-C: stop waiting; the container keeps running (or is removed with --rm), as with docker.
  for await (const ev of client.stream('ContainerRun', { spec, detach: o.detach ?? false, pull: o.pull ?? '' })) {
    if (ev.created) {
      id = ev.created.id;
      if (o.detach) process.stdout.write(`${id}\n`);
    } else if (ev.log) writeOutput(ev.log.stream, ev.log.data);
    else if (ev.exit) {
      exitCode = ev.exit.exitCode;
      if (ev.exit.error) process.stderr.write(`tsswarm: container ${shortId(id)}: ${ev.exit.error}\n`);
    }
  }
  return exitCode;
}

export function containerCommands(connect: Connect, format: () => OutputFormat): Command[] {
  const container = new Command('container').description('manage containers on this node').enablePositionalOptions();

  const run = addRunOptions(new Command('run').description('create and start a container')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rm', 'remove the container when it exits')
    .addOption(new Option('--pull <policy>', 'pull the image before running: missing (default), always or never').choices(['missing', 'always', 'never'])))
    .action(async (image: string, command: string[], o: RunFlags) => {
      process.exitCode = await runContainer(connect, image, command, o);
    });
  const create = addRunOptions(new Command('create').description('create a container without starting it'))
    .action(async (image: string, command: string[], o: RunFlags) => {
      const c = await connect().call('ContainerCreate', specFromFlags(image, command, o));
      process.stdout.write(`${c.id}\n`);
    });

  const eachRef = (verb: string, method: string, extra: (o: any) => object = () => ({})) =>
    async (refs: string[], o: any) => {
      const client = connect();
      let failed = 0;
      for (const ref of refs) {
        try {
          await client.call(method, { id: ref, ...extra(o) });
          process.stdout.write(`${ref}\n`);
        } catch (err) {
          failed++;
          process.stderr.write(`tsswarm: ${verb} ${ref}: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    };

  const ps = new Command('ps').alias('ls').description('list containers')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container ids')
    .option('--no-trunc', 'do not truncate output')
    .option('--format <format>', 'table or json')
    .action(async (o: { all?: boolean; quiet?: boolean; trunc: boolean; format?: string }) => {
      const { containers } = await connect().call<{ containers: ContainerRecord[] }>('ContainerList', { all: o.all ?? false });
      if (o.quiet) { for (const c of containers) process.stdout.write(`${o.trunc ? shortId(c.id) : c.id}\n`); return; }
      if ((o.format ?? format()) === 'json') { printJson(containers); return; }
      printTable(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES'], containers.map((c) => [
        o.trunc ? shortId(c.id) : c.id, c.image, JSON.stringify(o.trunc ? truncate(c.command.join(' '), 20) : c.command.join(' ')),
        formatAgo(c.created), statusText(c), c.name,
      ]));
    });

  const logs = new Command('logs').description('show the output of a container')
    .option('-f, --follow', 'follow the output')
    .option('-n, --tail <lines>', 'number of lines from the end', 'all')
    .option('-t, --timestamps', 'show timestamps')
    .argument('<container>')
    .action(async (ref: string, o: { follow?: boolean; tail: string; timestamps?: boolean }) => {
      const tail = o.tail === 'all' ? -1 : parseInteger('--tail', o.tail, 0);
      for await (const line of connect().stream('ContainerLogs', { id: ref, follow: o.follow ?? false, tail, timestamps: o.timestamps ?? false })) {
        if (o.timestamps) writeOutput(line.stream, Buffer.from(`${line.time} `));
        writeOutput(line.stream, line.data);
      }
    });

  const stop = new Command('stop').description('stop containers: the stop signal, then SIGKILL after the timeout')
    .option('-t, --time <seconds>', 'seconds to wait before killing')
    .argument('<containers...>')
    .action(eachRef('stop', 'ContainerStop', (o) => (o.time === undefined ? {} : { timeoutSeconds: parseInteger('--time', o.time, 0), timeoutSet: true })));
  const kill = new Command('kill').description('send a signal to containers (default SIGKILL)')
    .option('-s, --signal <signal>', 'signal to send', 'SIGKILL')
    .argument('<containers...>')
    .action(eachRef('kill', 'ContainerKill', (o) => ({ signal: o.signal })));
  const rm = new Command('rm').description('remove containers')
    .option('-f, --force', 'kill and remove a running container')
    .argument('<containers...>')
    .action(eachRef('rm', 'ContainerRemove', (o) => ({ force: o.force ?? false })));
  const start = new Command('start').description('start stopped containers').argument('<containers...>').action(eachRef('start', 'ContainerStart'));
  const pause = new Command('pause').description('freeze all processes of containers').argument('<containers...>').action(eachRef('pause', 'ContainerPause'));
  const unpause = new Command('unpause').description('thaw paused containers').argument('<containers...>').action(eachRef('unpause', 'ContainerUnpause'));
  const wait = new Command('wait').description('wait for a container to exit and print its exit code').argument('<container>')
    .action(async (ref: string) => {
      const exit = await connect().call('ContainerWait', { id: ref });
      process.stdout.write(`${exit.exitCode}\n`);
    });
  const inspect = new Command('inspect').description('show the details of containers as JSON').argument('<containers...>')
    .action(async (refs: string[]) => {
      const client = connect();
      printJson(await Promise.all(refs.map((id) => client.call('ContainerInspect', { id }))));
    });
  const exec = new Command('exec').description('run a command in a running container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect, [])
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <user[:group]>', 'user to run as')
    .argument('<container>').argument('<command...>')
    .passThroughOptions()
    .action(async (ref: string, command: string[], o: { env: string[]; workdir?: string; user?: string }) => {
      let code = 0;
      for await (const ev of connect().stream('ContainerExec', { id: ref, cmd: command, env: o.env, workingDir: o.workdir ?? '', user: o.user ?? '' })) {
        if (ev.output) writeOutput(ev.output.stream, ev.output.data);
        else if (ev.exitCode !== undefined && ev.exitCode !== null) code = ev.exitCode;
      }
      process.exitCode = code;
    });

  for (const c of [run, create, start, ps, logs, stop, kill, rm, pause, unpause, wait, inspect, exec]) container.addCommand(c);
  return [container];
}
