/**
 * `tsswarm daemon`: its flags, read by the same command line as every other command (src/main.ts
 * adds it); the daemon itself is loaded only when this command runs.
 */
import { Command, Option } from 'commander';

export function daemonCommand(): Command {
  return new Command('daemon').description('run the node daemon')
    .requiredOption('--data-dir <dir>', 'where this node keeps its state')
    .option('--socket <path>', 'unix socket of the local API', '/run/tsswarm/tsswarm.sock')
    .option('--listen-addr <ip:port>', 'address for cluster traffic (managers and workers)', '0.0.0.0:2377')
    .option('--cgroup-parent <name>', 'cgroup under which containers are created', 'tsswarm')
    .addOption(new Option('--runtime <name>', 'OCI runtime for containers').choices(['tsswarm', 'runc', 'crun']).default('tsswarm'))
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .option('--hostname <name>', 'this node\'s name in the swarm (default: the machine\'s hostname)')
    .addOption(new Option('--network-driver <driver>', 'overlay: join tasks to overlay networks and the routing mesh in this daemon\'s network namespace; none: refuse such tasks').choices(['overlay', 'none']).default('overlay'))
    .option('--network-prefix <prefix>', 'names of this daemon\'s overlay namespaces start with it (1-7 of a-z0-9-; default: from the data dir)')
    .option('--bridge-subnet <cidr>', 'subnet of the bridge network for `container run --network bridge` (default 172.29.0.0/16)')
    .option('--dns-upstream <ip:port...>', 'resolvers for names outside the swarm (default: those of /etc/resolv.conf)')
    .option('--insecure-registry <host:port...>', 'registries to reach over plain HTTP (loopback ones always are)')
    .option('--registry-config <dir>', 'where login keeps registry credentials (DIR/config.json; default $TSSWARM_CONFIG or ~/.tsswarm; docker\'s own config.json is read too)')
    .action(async (o) => {
      const { runDaemon } = await import('./main.js');
      await runDaemon(o);
    });
}
