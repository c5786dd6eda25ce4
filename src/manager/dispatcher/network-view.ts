/**
 * What one worker must make of the swarm's networks (the dispatcher sends it in the session): the
 * overlays its tasks are on, with every endpoint of them in the cluster so that tunnels and neighbour
 * entries can be programmed statically, the services that DNS answers and VIPs balance to, and the
 * published ports of the routing mesh. Pure: a function of the store's objects.
 */
import type { NetworkObject, NodeObject, ServiceObject, TaskObject } from '../../api/objects.js';
import { isTerminal, taskName, taskStateRank } from '../../api/objects.js';
import { ingressNetwork } from '../allocator/allocator.js';

/** proto NodeNetworkState; the worker's src/network/types.ts reads the same shape. */
export interface NodeNetworkView {
  vtep: string;
  networks: {
    id: string; name: string; vni: number; subnet: string; gateway: string; ingress: boolean; nodeAddress: string;
    endpoints: { ip: string; vtep: string }[];
    services: { name: string; mode: 'vip' | 'dnsrr'; vip: string; tasks: { name: string; ip: string }[] }[];
  }[];
  published: { protocol: 'tcp' | 'udp'; publishedPort: number; targetPort: number; mode: 'ingress' | 'host'; backends: string[] }[];
}

export interface NetworkStateSource {
  networks: NetworkObject[];
  services: ServiceObject[];
  tasks: TaskObject[];
  nodes: NodeObject[];
}

/** The underlay address of a node: where its VXLAN tunnels end. */
export function underlayAddress(node: NodeObject): string {
  return node.status.addr.replace(/:\d+$/, '') || (node.advertiseAddr ?? '').replace(/:\d+$/, '');
}


/** A task that holds its address on the wire: placed, and not finished. */
function hasEndpoint(t: TaskObject): boolean {
  return t.nodeId !== '' && !isTerminal(t.status.state) && taskStateRank(t.status.state) >= taskStateRank('assigned');
}

/** A task that should receive traffic: running, and healthy when a health check applies. */
function isBackend(t: TaskObject): boolean {
  return t.desiredState === 'running' && t.status.state === 'running' && (!t.status.health || t.status.health === 'healthy');
}

function addressOn(t: TaskObject, networkId: string): string | undefined {
  return t.networks.find((a) => a.networkId === networkId)?.addresses[0]?.split('/')[0];
}

export function nodeNetworkState(nodeId: string, src: NetworkStateSource): NodeNetworkView | undefined {
  const nodes = new Map(src.nodes.map((n) => [n.id, n]));
  const self = nodes.get(nodeId);
  if (!self) return undefined;
  const vtepOf = (id: string) => {
    const n = nodes.get(id);
    return n ? underlayAddress(n) : '';
  };
  const ingress = ingressNetwork(src.networks);
  const publishing = src.services.filter((s) => s.endpoint.ports.some((p) => p.publishedPort > 0));

  const local = new Set<string>();
  for (const t of src.tasks) if (t.nodeId === nodeId && hasEndpoint(t)) for (const a of t.networks) local.add(a.networkId);
  if (ingress && publishing.length > 0 && self.ingressAddress) local.add(ingress.id);

  const networks: NodeNetworkView['networks'] = [];
  for (const n of src.networks) {
    if (!local.has(n.id)) continue;
    const endpoints: { ip: string; vtep: string }[] = [];
    const backends = new Map<string, { name: string; ip: string }[]>();
    const containers: { name: string; ip: string }[] = [];
    for (const t of src.tasks) {
      const ip = addressOn(t, n.id);
      if (!ip || !hasEndpoint(t)) continue;
      const vtep = vtepOf(t.nodeId);
      if (vtep) endpoints.push({ ip, vtep });
      if (t.attachment) containers.push({ name: t.attachment.containerName, ip });
      else if (isBackend(t)) {
        const list = backends.get(t.serviceId) ?? [];
        list.push({ name: taskName(t), ip });
        backends.set(t.serviceId, list);
      }
    }
    if (n.spec.ingress) {
      for (const node of src.nodes) {
        const vtep = underlayAddress(node);
        if (node.ingressAddress && vtep) endpoints.push({ ip: node.ingressAddress, vtep });
      }
    }
    const services: NodeNetworkView['networks'][number]['services'] = [];
    if (!n.spec.ingress) {
      for (const s of src.services) {
        if (!s.spec.task.networks.includes(n.id)) continue;
        services.push({
          name: s.spec.name, mode: s.spec.endpoint.mode,
          vip: s.endpoint.virtualIps.find((v) => v.networkId === n.id)?.addr.split('/')[0] ?? '',
          tasks: (backends.get(s.id) ?? []).sort((a, b) => a.name.localeCompare(b.name)),
        });
      }
      // A standalone container answers to its name, as on Docker's attachable networks: a name
      // with the addresses of the containers that have it (names are unique per node, not per swarm).
      const byName = new Map<string, { name: string; ip: string }[]>();
      for (const c of containers) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
      for (const [name, tasks] of [...byName].sort((a, b) => a[0].localeCompare(b[0]))) {
        services.push({ name, mode: 'dnsrr', vip: '', tasks: tasks.sort((a, b) => a.ip.localeCompare(b.ip)) });
      }
    }
    endpoints.sort((a, b) => a.ip.localeCompare(b.ip));
    networks.push({
      id: n.id, name: n.spec.name, vni: n.vni, subnet: n.spec.subnet, gateway: n.spec.gateway, ingress: n.spec.ingress,
      nodeAddress: n.spec.ingress ? self.ingressAddress ?? '' : '', endpoints, services,
    });
  }

  const published: NodeNetworkView['published'] = [];
  if (ingress && local.has(ingress.id)) {
    for (const s of publishing) {
      const tasks = src.tasks.filter((t) => t.serviceId === s.id && isBackend(t));
      for (const p of s.endpoint.ports) {
        if (p.publishedPort === 0) continue;
        const backends = tasks
          .filter((t) => p.publishMode === 'ingress' || t.nodeId === nodeId)
          .map((t) => addressOn(t, ingress.id))
          .filter((ip): ip is string => !!ip)
          .sort();
        published.push({ protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort, mode: p.publishMode, backends });
      }
    }
    published.sort((a, b) => a.publishedPort - b.publishedPort || a.protocol.localeCompare(b.protocol));
  }
  return { vtep: underlayAddress(self), networks, published };
}
