/**
 * VIP load balancing inside a task's namespace, with nftables instead of IPVS: a connection to a
 * service's VIP is DNATed, in the output hook, to the next of the service's tasks in turn.
 */
import type { OverlayNetworkState } from './types.js';

export const TASK_TABLE = 'tsswarm';

/**
 * The whole ruleset of a task that joins `networks`, as one `nft -f` transaction that replaces what
 * was there (declaring the table first makes the delete valid when it does not exist yet), or only
 * creates it in a namespace known to have none (`fresh`). Empty
 * string: the task needs no table (and has none to remove if it never had one).
 */
export function taskVipRuleset(networks: OverlayNetworkState[], fresh = false): string {
  const balance: string[] = [];
  const refuse: string[] = [];
  const seen = new Set<string>();
  for (const network of networks) {
    for (const service of network.services) {
      if (service.mode !== 'vip' || !service.vip || seen.has(service.vip)) continue;
      seen.add(service.vip);
      const backends = [...new Set(service.tasks.map((t) => t.ip))];
      if (backends.length === 0) {
        // Nothing serves it: refuse at once rather than let the connection time out.
        refuse.push(`    ip daddr ${service.vip} reject`);
      } else if (backends.length === 1) {
        balance.push(`    ip daddr ${service.vip} dnat to ${backends[0]}`);
      } else {
        const map = backends.map((ip, i) => `${i} : ${ip}`).join(', ');
        balance.push(`    ip daddr ${service.vip} dnat to numgen inc mod ${backends.length} map { ${map} }`);
      }
    }
  }
  if (balance.length === 0 && refuse.length === 0) return '';
  // Deleting a table with base chains waits for an RCU grace period (~10 ms here): a namespace
  // created a moment ago has no table, so attach skips the delete (`fresh`).
  const replace = fresh ? [] : [`table ip ${TASK_TABLE}`, `delete table ip ${TASK_TABLE}`];
  return [
    ...replace,
    `table ip ${TASK_TABLE} {`,
    // Only chains with rules: each base chain is a hook every packet of the task passes.
    ...(balance.length === 0 ? [] : ['  chain vip {', '    type nat hook output priority -100; policy accept;', ...balance, '  }']),
    ...(refuse.length === 0 ? [] : ['  chain unserved {', '    type filter hook output priority 0; policy accept;', ...refuse, '  }']),
    '}',
    '',
  ].join('\n');
}

/** Removes the table if present (a task whose services all went away). */
export function taskVipRemoval(): string {
  return `table ip ${TASK_TABLE}\ndelete table ip ${TASK_TABLE}\n`;
}
