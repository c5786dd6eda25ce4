/** `tsswarm swarm init|join|join-token|leave|inspect` and `tsswarm node ls|inspect|update|promote|demote|rm`. */
import { Command, Option } from 'commander';
import type { NodeObject } from '../api/objects.js';
import type { DaemonClient, SERVICES } from './client.js';
import { capitalise as cap, printJson, printTable, type OutputFormat } from './format.js';
import { parseDurationMs, parseInteger, UsageError } from './units.js';

type Connect = (service: keyof typeof SERVICES) => DaemonClient;
const collect = (v: string, prev: string[]) => [...prev, v];

export function swarmCommands(connect: Connect, format: () => OutputFormat): Command[] {
  const swarm = new Command('swarm').description('manage the swarm');

  swarm.addCommand(new Command('init').description('initialise a swarm with this node as its first manager')
    .option('--advertise-addr <ip[:port]>', 'address other nodes use to reach this manager')
    .option('--listen-addr <ip:port>', 'address to listen on for cluster traffic')
    .option('--dispatcher-heartbeat <duration>', 'dispatcher heartbeat period (default 2s; a node is down after 3 missed)')
    .option('--cert-expiry <duration>', 'validity of node certificates (default 2160h); nodes renew at 50-80% of it')
    .option('--force-new-cluster', 'recover from lost quorum using this manager\'s state')
    .option('--task-history-limit <n>', 'finished tasks kept per slot (default 5)')
    .action(async (o: { advertiseAddr?: string; listenAddr?: string; dispatcherHeartbeat?: string; certExpiry?: string; forceNewCluster?: boolean; taskHistoryLimit?: string }) => {
      const historyLimit = o.taskHistoryLimit === undefined ? undefined : parseInteger('--task-history-limit', o.taskHistoryLimit, 0);
      const info = await connect('swarm').call('Init', {
        advertiseAddr: o.advertiseAddr ?? '', listenAddr: o.listenAddr ?? '', forceNewCluster: o.forceNewCluster ?? false,
        dispatcherHeartbeatMs: o.dispatcherHeartbeat ? parseDurationMs('--dispatcher-heartbeat', o.dispatcherHeartbeat) : 0,
        certExpiryMs: o.certExpiry ? parseDurationMs('--cert-expiry', o.certExpiry) : 0,
        // On the wire 0 means the default: "keep none" travels as -1.
        taskHistoryLimit: historyLimit === undefined ? 0 : historyLimit === 0 ? -1 : historyLimit,
      });
      const { token } = await connect('swarm').call('JoinToken', { role: 'worker', rotate: false });
      process.stdout.write(`Swarm initialized: current node (${info.nodeId}) is now a manager.\n\n`
        + `To add a worker to this swarm, run the following command:\n\n    tsswarm swarm join --token ${token} ${info.nodeAddr}\n\n`
        + 'To add a manager to this swarm, run \'tsswarm swarm join-token manager\' and follow the instructions.\n');
    }));

  swarm.addCommand(new Command('update').description('update the swarm\'s settings')
    .option('--task-history-limit <n>', 'finished tasks kept per slot')
    .addOption(new Option('--auto-rebalance <bool>', 'spread services onto nodes that join or come back from drain or failure').choices(['true', 'false']))
    .action(async (o: { taskHistoryLimit?: string; autoRebalance?: string }) => {
      if (o.taskHistoryLimit === undefined && o.autoRebalance === undefined) throw new UsageError('nothing to update: give --task-history-limit or --auto-rebalance');
      const n = o.taskHistoryLimit === undefined ? 0 : parseInteger('--task-history-limit', o.taskHistoryLimit, 0);
      await connect('swarm').call('Update', { taskHistoryLimit: o.taskHistoryLimit === undefined ? 0 : n === 0 ? -1 : n, autoRebalance: o.autoRebalance ?? '' });
      process.stdout.write('Swarm updated.\n');
    }));

  swarm.addCommand(new Command('join').description('join a swarm as a worker or manager (the token says which)')
    .requiredOption('--token <token>', 'the join token')
    .option('--advertise-addr <ip[:port]>', 'address other nodes use to reach this node')
    .option('--listen-addr <ip:port>', 'address to listen on for cluster traffic')
    .argument('<manager-addr>', 'a manager\'s IP:PORT')
    .action(async (remoteAddr: string, o: { token: string; advertiseAddr?: string; listenAddr?: string }) => {
      const info = await connect('swarm').call('Join', { token: o.token, remoteAddr, advertiseAddr: o.advertiseAddr ?? '', listenAddr: o.listenAddr ?? '' });
      process.stdout.write(`This node joined a swarm as a ${info.role}.\n`);
    }));

  swarm.addCommand(new Command('join-token').description('show (or rotate) the join token for workers or managers')
    .option('-q, --quiet', 'only print the token')
    .option('--rotate', 'rotate the token: the old one stops working')
    .addArgument(new Command().createArgument('<role>', 'worker or manager').choices(['worker', 'manager']))
    .action(async (role: string, o: { quiet?: boolean; rotate?: boolean }) => {
      const { token, managerAddr } = await connect('swarm').call('JoinToken', { role, rotate: o.rotate ?? false });
      if (o.quiet) { process.stdout.write(`${token}\n`); return; }
      if (o.rotate) process.stdout.write(`Successfully rotated ${role} join token.\n\n`);
      process.stdout.write(`To add a ${role} to this swarm, run the following command:\n\n    tsswarm swarm join --token ${token} ${managerAddr}\n`);
    }));

  swarm.addCommand(new Command('leave').description('leave the swarm')
    .option('-f, --force', 'leave even as a manager')
    .action(async (o: { force?: boolean }) => {
      await connect('swarm').call('Leave', { force: o.force ?? false });
      process.stdout.write('Node left the swarm.\n');
    }));

  swarm.addCommand(new Command('inspect').description('show this node\'s view of the swarm')
    .action(async () => printJson(await connect('swarm').call('Inspect', {}))));

  const node = new Command('node').description('manage swarm nodes');
  node.addCommand(new Command('ls').alias('list').description('list nodes')
    .option('-q, --quiet', 'only display ids')
    .option('--format <format>', 'table or json')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const [{ nodes }, self] = await Promise.all([
        connect('control').call<{ nodes: NodeObject[] }>('ListNodes', {}),
        connect('swarm').call<{ nodeId: string }>('Inspect', {}),
      ]);
      if (o.quiet) { for (const n of nodes) process.stdout.write(`${n.id}\n`); return; }
      if ((o.format ?? format()) === 'json') { printJson(nodes); return; }
      printTable(['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ADDRESS'], nodes.map((n) => [
        `${n.id}${n.id === self.nodeId ? ' *' : ''}`, n.description.hostname, cap(n.status.state), cap(n.spec.availability),
        n.managerStatus?.raftId ? (n.managerStatus.leader ? 'Leader' : cap(n.managerStatus.reachability)) : '',
        n.status.addr,
      ]));
    }));
  node.addCommand(new Command('inspect').description('show nodes as JSON').argument('<nodes...>')
    .action(async (refs: string[]) => printJson(await Promise.all(refs.map((id) => connect('control').call('GetNode', { id }))))));
  node.addCommand(new Command('update').description('update a node\'s availability, labels or role')
    .addOption(new Option('--availability <a>', 'active, pause or drain').choices(['active', 'pause', 'drain']))
    .option('--label-add <key=value>', 'add or change a label', collect, [])
    .option('--label-rm <key>', 'remove a label', collect, [])
    .addOption(new Option('--role <role>', 'worker or manager').choices(['worker', 'manager']))
    .argument('<node>')
    .action(async (ref: string, o: { availability?: string; labelAdd: string[]; labelRm: string[]; role?: string }) => {
      await updateNode(connect, ref, (spec) => {
        if (o.availability) spec.availability = o.availability as NodeObject['spec']['availability'];
        if (o.role) spec.role = o.role as NodeObject['spec']['role'];
        for (const l of o.labelAdd) {
          const eq = l.indexOf('=');
          if (eq === 0) throw new UsageError(`invalid label "${l}": expected KEY=VALUE`);
          spec.labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
        }
        for (const k of o.labelRm) {
          if (!(k in spec.labels)) throw new UsageError(`node has no label "${k}"`);
          delete spec.labels[k];
        }
      });
      process.stdout.write(`${ref}\n`);
    }));
  for (const [verb, role] of [['promote', 'manager'], ['demote', 'worker']] as const) {
    node.addCommand(new Command(verb).description(`make nodes ${role}s`).argument('<nodes...>')
      .action(async (refs: string[]) => {
        for (const ref of refs) {
          await updateNode(connect, ref, (spec) => { spec.role = role; });
          process.stdout.write(`Node ${ref} ${verb}d to a ${role} in the swarm.\n`);
        }
      }));
  }
  node.addCommand(new Command('rm').alias('remove').description('remove nodes from the swarm')
    .option('-f, --force', 'remove a node that is not down')
    .argument('<nodes...>')
    .action(async (refs: string[], o: { force?: boolean }) => {
      for (const id of refs) {
        await connect('control').call('RemoveNode', { id, force: o.force ?? false });
        process.stdout.write(`${id}\n`);
      }
    }));
  return [swarm, node];
}

async function updateNode(connect: Connect, ref: string, change: (spec: NodeObject['spec']) => void): Promise<void> {
  const current = await connect('control').call<NodeObject>('GetNode', { id: ref });
  const spec = { ...current.spec, labels: { ...current.spec.labels } };
  change(spec);
  await connect('control').call('UpdateNode', { id: current.id, version: current.meta.version, spec });
}
