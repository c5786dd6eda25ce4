/** What a network's resolver answers, from the cluster's view of the network. */
import type { OverlayNetworkState } from './types.js';

/** Name → addresses, in a stable order so that unchanged records compare equal. */
export type DnsRecords = Map<string, string[]>;

export function networkDnsRecords(network: OverlayNetworkState): DnsRecords {
  const records: DnsRecords = new Map();
  const add = (name: string, ips: string[]) => {
    const merged = new Set([...(records.get(name) ?? []), ...ips]);
    if (merged.size > 0) records.set(name, [...merged].sort());
  };
  for (const service of network.services) {
    const taskIps = service.tasks.map((t) => t.ip);
    if (service.mode === 'vip' && service.vip) add(service.name, [service.vip]);
    else add(service.name, taskIps);
    add(`tasks.${service.name}`, taskIps);
    for (const task of service.tasks) add(task.name, [task.ip]);
  }
  return records;
}

/** The resolver's stdin commands that take `current` to `desired`. */
export function dnsRecordChanges(current: DnsRecords, desired: DnsRecords): string[] {
  const lines: string[] = [];
  for (const name of current.keys()) if (!desired.has(name)) lines.push(`del ${name}`);
  for (const [name, ips] of desired) {
    const before = current.get(name);
    if (!before || before.join(' ') !== ips.join(' ')) lines.push(`set ${name} ${ips.join(' ')}`);
  }
  return lines;
}
