/**
 * The routing mesh. A published port answers on every address of the node: the daemon's namespace
 * DNATs it to the ingress sandbox over a private /30, and the ingress sandbox DNATs it on to the
 * service's tasks in turn (numgen) and SNATs it to the node's ingress address, so that replies come
 * back through this node's sandbox whichever node the task runs on.
 */
import { BRIDGE, INGRESS_LINK_SANDBOX_END } from './names.js';
import type { PublishedPortState } from './types.js';

/** The link between the daemon's namespace (.1) and the ingress sandbox (.2). */
export const INGRESS_LINK = { daemonEnd: '169.254.77.1', sandboxEnd: '169.254.77.2', prefixLength: 30 } as const;
export const INGRESS_TABLE = 'tsswarm-ingress';

export interface MeshPort {
  protocol: 'tcp' | 'udp';
  publishedPort: number;
  targetPort: number;
  /** Where this node sends the port's connections (for mode=host, only the tasks on this node). */
  backends: string[];
}

/** The ports this node serves: ingress ports always, host-mode ports only where a task runs here. */
export function meshPorts(published: PublishedPortState[], isLocal: (ip: string) => boolean): MeshPort[] {
  const ports: MeshPort[] = [];
  for (const port of published) {
    const backends = [...new Set(port.mode === 'host' ? port.backends.filter(isLocal) : port.backends)];
    if (port.mode === 'host' && backends.length === 0) continue;
    ports.push({ protocol: port.protocol, publishedPort: port.publishedPort, targetPort: port.targetPort, backends });
  }
  return ports;
}

function replaceTable(family: string, table: string, body: string[]): string {
  return [`table ${family} ${table}`, `delete table ${family} ${table}`, `table ${family} ${table} {`, ...body, '}', ''].join('\n');
}

export function removeTable(family: string, table: string): string {
  return `table ${family} ${table}\ndelete table ${family} ${table}\n`;
}

/** The daemon namespace's table: traffic for any local address on a published port enters the mesh. */
export function daemonMeshRuleset(table: string, ports: MeshPort[]): string {
  const prerouting: string[] = [];
  const output: string[] = [];
  for (const port of ports) {
    const match = `${port.protocol} dport ${port.publishedPort}`;
    prerouting.push(`    fib daddr type local ${match} dnat to ${INGRESS_LINK.sandboxEnd}`);
    // Loopback sources cannot leave the namespace: localhost is not published (as without docker-proxy).
    output.push(`    fib daddr type local ip daddr != 127.0.0.0/8 ${match} dnat to ${INGRESS_LINK.sandboxEnd}`);
  }
  return replaceTable('ip', table, [
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...prerouting,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...output,
    '  }',
  ]);
}

/** The ingress sandbox's table: balance over the backends, and make replies return through this node. */
export function ingressSandboxRuleset(ports: MeshPort[], nodeAddress: string): string {
  const balance: string[] = [];
  for (const port of ports) {
    if (port.backends.length === 0) continue; // nothing serves it: the sandbox itself refuses the connection
    const match = `iifname "${INGRESS_LINK_SANDBOX_END}" ${port.protocol} dport ${port.publishedPort}`;
    if (port.backends.length === 1) {
      balance.push(`    ${match} dnat to ${port.backends[0]}:${port.targetPort}`);
    } else {
      const map = port.backends.map((ip, i) => `${i} : ${ip} . ${port.targetPort}`).join(', ');
      balance.push(`    ${match} dnat ip to numgen inc mod ${port.backends.length} map { ${map} }`);
    }
  }
  return replaceTable('ip', INGRESS_TABLE, [
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...balance,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${BRIDGE}" ct status dnat snat to ${nodeAddress}`,
    '  }',
  ]);
}
