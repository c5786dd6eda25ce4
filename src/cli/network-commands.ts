/** `tsswarm network create|ls|inspect|rm`: the swarm's overlay networks. */
import { Command, Option } from 'commander';
import type { NetworkObject } from '../api/objects.js';
import type { DaemonClient, SERVICES } from './client.js';
import { printJson, printTable, removeEach, type OutputFormat } from './format.js';

type Connect = (service: keyof typeof SERVICES) => DaemonClient;
const collect = (v: string, prev: string[]) => [...prev, v];

export function networkCommands(connect: Connect, format: () => OutputFormat): Command[] {
  const network = new Command('network').description('manage overlay networks');

  network.addCommand(new Command('create').description('create an overlay network')
    .addOption(new Option('-d, --driver <driver>', 'network driver').choices(['overlay']).default('overlay'))
    .option('--subnet <cidr>', 'subnet (default: the next free /24 of 10.0.0.0/8)')
    .option('--gateway <ip>', 'gateway address in the subnet (default: its first address)')
    .option('--attachable', 'let standalone containers attach')
    .option('-l, --label <KEY=VALUE>', 'network label', collect, [])
    .argument('<name>')
    .action(async (name: string, o: { driver: string; subnet?: string; gateway?: string; attachable?: boolean; label: string[] }) => {
      const labels = Object.fromEntries(o.label.map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, ''])));
      const created = await connect('control').call<NetworkObject>('CreateNetwork', {
        spec: { name, driver: o.driver, subnet: o.subnet ?? '', gateway: o.gateway ?? '', attachable: Boolean(o.attachable), labels },
      });
      process.stdout.write(`${created.id}\n`);
    }));

  network.addCommand(new Command('ls').alias('list').description('list networks')
    .option('-q, --quiet', 'only display ids').option('--format <format>', 'table or json')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const { networks } = await connect('control').call<{ networks: NetworkObject[] }>('ListNetworks', {});
      if (o.quiet) { for (const n of networks) process.stdout.write(`${n.id}\n`); return; }
      if ((o.format ?? format()) === 'json') { printJson(networks); return; }
      printTable(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'GATEWAY'], networks.map((n) => [
        n.id.slice(0, 12), n.spec.name, n.spec.driver, 'swarm', n.spec.subnet, n.spec.gateway,
      ]));
    }));

  network.addCommand(new Command('inspect').description('show networks as JSON, with the VIPs, tasks and containers on them').argument('<networks...>')
    .action(async (refs: string[]) => {
      const details = await Promise.all(refs.map((id) => connect('control').call<{ network: NetworkObject; endpoints: unknown[] }>('InspectNetwork', { id })));
      printJson(details.map((d) => ({ ...d.network, endpoints: d.endpoints })));
    }));

  network.addCommand(new Command('rm').alias('remove').description('remove networks').argument('<networks...>')
    .action((refs: string[]) => removeEach('network rm', refs, (id) => connect('control').call('RemoveNetwork', { id }))));
  return [network];
}
