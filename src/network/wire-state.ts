/**
 * The network state as it arrives in a session message (proto3: unset strings are '', unset
 * messages null) turned into the driver's types, where absent means absent.
 */
import type { NodeNetworkState } from './types.js';

interface WireNetwork {
  id: string; name: string; vni: number; subnet: string; gateway: string; ingress: boolean; nodeAddress: string;
  endpoints: { ip: string; vtep: string }[];
  services: { name: string; mode: string; vip: string; tasks: { name: string; ip: string }[] }[];
}

interface WireNetworkState {
  vtep: string;
  networks: WireNetwork[] | null;
  published: { protocol: string; publishedPort: number; targetPort: number; mode: string; backends: string[] }[] | null;
}

export function networkStateFromWire(raw: unknown): NodeNetworkState {
  const w = raw as WireNetworkState;
  return {
    vtep: w.vtep,
    networks: (w.networks ?? []).map((n) => ({
      id: n.id, name: n.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, ingress: n.ingress,
      ...(n.nodeAddress ? { nodeAddress: n.nodeAddress } : {}),
      endpoints: n.endpoints ?? [],
      services: (n.services ?? []).map((s) => ({
        name: s.name, mode: s.mode as 'vip' | 'dnsrr', ...(s.vip ? { vip: s.vip } : {}), tasks: s.tasks ?? [],
      })),
    })),
    published: (w.published ?? []).map((p) => ({
      protocol: p.protocol as 'tcp' | 'udp', publishedPort: p.publishedPort, targetPort: p.targetPort,
      mode: p.mode as 'ingress' | 'host', backends: p.backends ?? [],
    })),
  };
}
