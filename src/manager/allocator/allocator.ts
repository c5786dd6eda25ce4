/**
 * The leader's network allocator: subnets and VNIs for new networks, a VIP per service per network,
 * an address per task attachment, an ingress address per node, and published ports left to the
 * swarm. It keeps no state of its own that matters: what is in use is read from the store's objects
 * on every pass, so allocations survive leader changes and two leaders never hand out one address.
 */
import type { NetworkObject, NodeObject, ServiceObject, ServiceSpec, TaskObject } from '../../api/objects.js';
import { isTerminal } from '../../api/objects.js';
import type { Action } from '../state/store.js';
import {
  formatIp, formatSubnet, isHostAddress, nextFreeAddress, nextFreeSubnet, overlaps, parseIp, parseSubnet, type Subnet,
} from './ipam.js';

/** Docker's defaults: overlays take /24s from 10.0.0.0/8; the ingress network is the first of them. */
export const DEFAULT_ADDRESS_POOL = '10.0.0.0/8';
export const DEFAULT_SUBNET_PREFIX = 24;
export const INGRESS_NETWORK_NAME = 'ingress';
export const INGRESS_SUBNET = '10.0.0.0/24';
export const INGRESS_GATEWAY = '10.0.0.1';
export const INGRESS_VNI = 4096;
export const FIRST_VNI = 4097;
/** Where ports published without a number are taken from (as Docker's 30000-32767). */
export const DYNAMIC_PORTS = { first: 30000, last: 32767 };

export interface AllocatorView {
  networks: NetworkObject[];
  services: ServiceObject[];
  tasks: TaskObject[];
  nodes: NodeObject[];
}

export type TaskAttachments = TaskObject['networks'];

export class AllocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AllocationError';
  }
}

/** The networks a service's tasks join: its own, then the ingress network when it publishes ports. */
export function attachedNetworkIds(spec: ServiceSpec, ingress: NetworkObject | undefined): string[] {
  const ids = [...spec.task.networks];
  if (ingress && spec.endpoint.ports.length > 0 && !ids.includes(ingress.id)) ids.push(ingress.id);
  return ids;
}

export function ingressNetwork(networks: NetworkObject[]): NetworkObject | undefined {
  return networks.find((n) => n.spec.ingress);
}

/** A free subnet and VNI for a new network, or the user's subnet checked against the others. */
export function chooseNetworkAddressing(
  existing: NetworkObject[], request: { subnet: string; gateway: string },
): { subnet: string; gateway: string; vni: number } {
  const used = existing.map((n) => parseSubnet(n.spec.subnet));
  let subnet: Subnet;
  if (request.subnet) {
    subnet = parseSubnet(request.subnet);
    const clash = existing.find((n) => overlaps(parseSubnet(n.spec.subnet), subnet));
    if (clash) throw new AllocationError(`subnet ${request.subnet} overlaps network ${clash.spec.name} (${clash.spec.subnet})`);
  } else {
    const free = nextFreeSubnet(parseSubnet(DEFAULT_ADDRESS_POOL), DEFAULT_SUBNET_PREFIX, used);
    if (!free) throw new AllocationError(`the address pool ${DEFAULT_ADDRESS_POOL} is exhausted: remove a network or give --subnet`);
    subnet = free;
  }
  let gateway: number;
  if (request.gateway) {
    gateway = parseIp(request.gateway);
    if (!isHostAddress(subnet, gateway)) throw new AllocationError(`gateway ${request.gateway} is not a host address of subnet ${formatSubnet(subnet)}`);
  } else {
    gateway = subnet.base + 1;
  }
  const vnis = new Set(existing.map((n) => n.vni));
  let vni = FIRST_VNI;
  while (vnis.has(vni)) vni++;
  return { subnet: formatSubnet(subnet), gateway: formatIp(gateway), vni };
}

/** Addresses in use per network id, read from the objects that hold them. */
export function addressesInUse(view: AllocatorView): Map<string, Set<number>> {
  const used = new Map<string, Set<number>>();
  for (const n of view.networks) used.set(n.id, new Set([parseIp(n.spec.gateway)]));
  const take = (networkId: string, addr: string) => {
    const set = used.get(networkId);
    if (set && addr) set.add(parseIp(addr.split('/')[0]!));
  };
  for (const s of view.services) for (const v of s.endpoint.virtualIps) take(v.networkId, v.addr);
  // A finished task's address is free again; the container that had it is gone or going.
  for (const t of view.tasks) if (!isTerminal(t.status.state)) for (const a of t.networks) for (const addr of a.addresses) take(a.networkId, addr);
  const ingress = ingressNetwork(view.networks);
  if (ingress) for (const n of view.nodes) if (n.ingressAddress) take(ingress.id, n.ingressAddress);
  return used;
}

export class NetworkAllocator {
  /** Where the last search ended per network: freed addresses are not reused at once. */
  private readonly hints = new Map<string, number>();

  private take(network: NetworkObject, used: Map<string, Set<number>>): string {
    const subnet = parseSubnet(network.spec.subnet);
    let set = used.get(network.id);
    if (!set) used.set(network.id, (set = new Set([parseIp(network.spec.gateway)])));
    const ip = nextFreeAddress(subnet, set, this.hints.get(network.id));
    if (ip === undefined) throw new AllocationError(`network ${network.spec.name} (${network.spec.subnet}) has no free address left`);
    set.add(ip);
    this.hints.set(network.id, ip + 1);
    return formatIp(ip);
  }

  /** Addresses for a new task of `service`, one per network it joins. */
  allocateTask(service: ServiceObject | undefined, spec: ServiceSpec['task'], networks: NetworkObject[], used: Map<string, Set<number>>): TaskAttachments {
    const byId = new Map(networks.map((n) => [n.id, n]));
    const ids = service ? attachedNetworkIds(service.spec, ingressNetwork(networks)) : spec.networks;
    return ids.map((id) => {
      const network = byId.get(id);
      if (!network) throw new AllocationError(`network ${id} does not exist (removed while the service used it?)`);
      return { networkId: id, addresses: [this.take(network, used)] };
    });
  }

  /**
   * Service VIPs and published ports, and nodes' ingress addresses: the updates that bring the store
   * in line with what is attached. Tasks are allocated by the scheduling pass (allocateTask).
   */
  pass(view: AllocatorView, used = addressesInUse(view)): Action[] {
    const actions: Action[] = [];
    const ingress = ingressNetwork(view.networks);
    const byId = new Map(view.networks.map((n) => [n.id, n]));
    const portsTaken = new Set(view.services.flatMap((s) => s.endpoint.ports.filter((p) => p.publishedPort > 0).map((p) => `${p.publishedPort}/${p.protocol}`)));
    for (const s of view.services) {
      try {
        const wanted = s.spec.endpoint.mode === 'vip' ? s.spec.task.networks.filter((id) => byId.has(id)) : [];
        const keep = s.endpoint.virtualIps.filter((v) => wanted.includes(v.networkId));
        const virtualIps = wanted.map((id) => keep.find((v) => v.networkId === id) ?? { networkId: id, addr: this.take(byId.get(id)!, used) });
        const ports = s.spec.endpoint.ports.map((p) => {
          if (p.publishedPort > 0) return p;
          const had = s.endpoint.ports.find((q) => q.targetPort === p.targetPort && q.protocol === p.protocol && q.publishMode === p.publishMode && q.publishedPort > 0);
          return { ...p, publishedPort: had?.publishedPort ?? this.dynamicPort(portsTaken, p.protocol) };
        });
        if (JSON.stringify(virtualIps) !== JSON.stringify(s.endpoint.virtualIps) || JSON.stringify(ports) !== JSON.stringify(s.endpoint.ports)) {
          actions.push({ op: 'update', kind: 'service', object: { ...s, endpoint: { virtualIps, ports } }, expectVersion: s.meta.version });
        }
      } catch (err) {
        // One service's exhausted network must not hold up the others; its tasks report why.
        if (!(err instanceof AllocationError)) throw err;
      }
    }
    if (ingress) {
      for (const n of view.nodes) {
        if (n.ingressAddress || n.status.state !== 'ready') continue;
        try {
          actions.push({ op: 'update', kind: 'node', object: { ...n, ingressAddress: this.take(ingress, used) }, expectVersion: n.meta.version });
        } catch (err) {
          if (!(err instanceof AllocationError)) throw err;
        }
      }
    }
    return actions;
  }

  private dynamicPort(taken: Set<string>, protocol: string): number {
    for (let p = DYNAMIC_PORTS.first; p <= DYNAMIC_PORTS.last; p++) {
      if (!taken.has(`${p}/${protocol}`)) {
        taken.add(`${p}/${protocol}`);
        return p;
      }
    }
    throw new AllocationError(`no free port left in ${DYNAMIC_PORTS.first}-${DYNAMIC_PORTS.last}`);
  }
}
