/** `tsswarm`'s commands: the command line read into calls on a daemon. Mirrors docker's commands and flags where the concept is the same. */
import { Command, CommanderError, Option } from 'commander';
import { DaemonClient, daemonAddress, type SERVICES } from './client.js';
import { containerCommands } from './container-commands.js';
import { imageCommands, loginCommands } from './image-commands.js';
import { networkCommands } from './network-commands.js';
import { serviceCommands } from './service-commands.js';
import { swarmCommands } from './swarm-commands.js';
import type { OutputFormat } from './format.js';
import { printJson } from './format.js';

const VERSION = '0.1.0';

const ONE_LINE_ERRORS = { outputError: (str: string, write: (s: string) => void) => write(`tsswarm: ${str.replace(/^error: /, '')}`) };

/** Makes the client of one of a daemon's services; tests give one that records the calls. */
export type ClientFactory = (address: string, service: keyof typeof SERVICES) => DaemonClient;
const daemonClient: ClientFactory = (address, service) => new DaemonClient(address, service);

/** `command`: the top-level command the arguments name, if any. */
function buildProgram(command: string | undefined, makeClient: ClientFactory, extraCommands: () => Command[]): Command {
  const program = new Command('tsswarm')
    .description('a container orchestrator in the style of Docker Swarm mode')
    .version(VERSION, '--version')
    .option('-H, --host <unix://PATH>', 'daemon socket to connect to (default: $TSSWARM_HOST or unix:///run/tsswarm/tsswarm.sock)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput(ONE_LINE_ERRORS);

  const clients = new Map<keyof typeof SERVICES, DaemonClient>();
  const connectTo = (service: keyof typeof SERVICES): DaemonClient => {
    let c = clients.get(service);
    if (!c) clients.set(service, (c = makeClient(daemonAddress(program.opts().host), service)));
    return c;
  };
  const connect = () => connectTo('node');
  const format = () => program.opts().format as OutputFormat;

  for (const c of extraCommands()) program.addCommand(c);

  program.addCommand(new Command('info').description('show information about this node and its daemon')
    .option('--format <format>', 'table or json')
    .action(async (o: { format?: string }) => {
      const info = await connect().call('Info', {});
      if ((o.format ?? format()) === 'json') { printJson(info); return; }
      for (const [k, v] of Object.entries(info)) process.stdout.write(`${k}: ${String(v)}\n`);
    }));

  // Only the group the command line names is built (a few ms less at every start); help, typos and
  // the other commands get them all.
  const groups: Array<[names: string[], build: () => Command[]]> = [
    [['container'], () => containerCommands(connect, format)],
    [['image'], () => imageCommands(connect, format)],
    [['login', 'logout'], () => loginCommands(connect)],
    [['swarm', 'node'], () => swarmCommands(connectTo, format)],
    [['service'], () => serviceCommands(connectTo, format)],
    [['network'], () => networkCommands(connectTo, format)],
  ];
  const named = groups.filter(([names]) => command !== undefined && names.includes(command));
  for (const [, build] of named.length ? named : groups) for (const c of build()) program.addCommand(c);
  // addCommand() does not pass the program's output settings and exitOverride down: without this a
  // subcommand's usage error would print commander's own "error: ..." line and exit 1 from inside it.
  // No help hint after a subcommand's error: it stays one line.
  const configure = (c: Command): void => {
    c.configureOutput(ONE_LINE_ERRORS).exitOverride();
    c.commands.forEach(configure);
  };
  program.commands.forEach(configure);

  program.hook('postAction', () => { for (const c of clients.values()) c.close(); });
  return program;
}

/** docker's top-level shortcuts: `tsswarm run`, `ps`, `rm`, `images`, ... */
const SHORTCUTS: Record<string, string[]> = {
  images: ['image', 'ls'], rmi: ['image', 'rm'], import: ['image', 'import'], load: ['image', 'load'],
  pull: ['image', 'pull'], push: ['image', 'push'], tag: ['image', 'tag'], save: ['image', 'save'], history: ['image', 'history'],
  ...Object.fromEntries(['run', 'create', 'start', 'ps', 'exec', 'logs', 'stop', 'kill', 'rm', 'pause', 'unpause', 'inspect', 'wait']
    .map((c) => [c, ['container', c]])),
};
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['-H', '--host', '--format']);

/** Where the top-level command is: the first argument that is neither a global option nor its value. */
function commandIndex(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(a)) { i++; continue; }
    if (!a.startsWith('-')) return i;
  }
  return -1;
}

function expandShortcut(args: string[]): string[] {
  const i = commandIndex(args);
  const target = i < 0 ? undefined : SHORTCUTS[args[i]!];
  return target ? [...args.slice(0, i), ...target, ...args.slice(i + 1)] : args;
}

/**
 * Runs one command line (without node and script); leaves the exit code in process.exitCode.
 * `extraCommands`: commands of other parts that share the `tsswarm` command line (the daemon's).
 */
export async function runCli(argv: string[], makeClient: ClientFactory = daemonClient, extraCommands: () => Command[] = () => []): Promise<void> {
  const args = expandShortcut(argv);
  const program = buildProgram(args[commandIndex(args)], makeClient, extraCommands);
  program.exitOverride();
  // docker run returns 125 when it or the daemon refused, so scripts can tell it from the container's own code.
  const isRun = args.includes('container') && args[args.indexOf('container') + 1] === 'run';
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = isRun && err.exitCode !== 0 ? 125 : err.exitCode;
      return;
    }
    process.stderr.write(`tsswarm: ${(err as Error).message}\n`);
    process.exitCode = isRun ? 125 : 1;
  }
}
