/**
 * What is on a network now, for `network inspect`: each service's virtual IP, and the address of every
 * task and standalone container that holds one (placed and not finished), with the node it is on.
 */
import type { NetworkObject, NodeObject, ServiceObject, TaskObject } from '../../api/objects.js';
import { isTerminal, taskName } from '../../api/objects.js';

export interface NetworkEndpoint {
  kind: 'vip' | 'task' | 'container';
  /** The service's, the task's or the container's name. */
  name: string;
  address: string;
  /** The node's hostname (tasks and containers). */
  node: string;
  /** The service's id for a VIP, else the task's (or the attachment's). */
  id: string;
}

export function networkEndpoints(
  network: NetworkObject, src: { services: ServiceObject[]; tasks: TaskObject[]; nodes: NodeObject[] },
): NetworkEndpoint[] {
  const hostname = new Map(src.nodes.map((n) => [n.id, n.description.hostname]));
  const out: NetworkEndpoint[] = [];
  for (const s of src.services) {
    const vip = s.endpoint.virtualIps.find((v) => v.networkId === network.id);
    if (vip) out.push({ kind: 'vip', name: s.spec.name, address: vip.addr.split('/')[0]!, node: '', id: s.id });
  }
  for (const t of src.tasks) {
    if (!t.nodeId || isTerminal(t.status.state)) continue;
    const address = t.networks.find((a) => a.networkId === network.id)?.addresses[0]?.split('/')[0];
    if (!address) continue;
    out.push({
      kind: t.attachment ? 'container' : 'task', name: t.attachment ? t.attachment.containerName : taskName(t),
      address, node: hostname.get(t.nodeId) ?? t.nodeId, id: t.id,
    });
  }
  const order = { vip: 0, task: 1, container: 2 };
  return out.sort((a, b) => order[a.kind] - order[b.kind] || a.name.localeCompare(b.name));
}
