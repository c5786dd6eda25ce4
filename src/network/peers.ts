/**
 * Remote endpoints of one overlay network, programmed statically into its VXLAN device as Docker's
 * overlay does: a forwarding entry (MAC → remote VTEP) and a permanent neighbour (IP → MAC), from which
 * the device's proxy answers ARP. No learning, no flooding: only what the cluster's state says exists.
 */
import { macForIp } from './addresses.js';
import { VXLAN } from './names.js';
import type { OverlayNetworkState } from './types.js';

/** IP → VTEP of the endpoints that live on other nodes. `UNKNOWN_VTEP` marks entries found, not made. */
export type PeerTable = Map<string, string>;
export const UNKNOWN_VTEP = '?';

export function remotePeers(network: OverlayNetworkState, ownVtep: string): PeerTable {
  const peers: PeerTable = new Map();
  for (const endpoint of network.endpoints) {
    if (endpoint.vtep !== ownVtep) peers.set(endpoint.ip, endpoint.vtep);
  }
  return peers;
}

export interface PeerBatches {
  /** `ip -batch` lines (neighbours). */
  neighbours: string[];
  /** `bridge -batch` lines (forwarding entries). */
  forwarding: string[];
}

/** The commands that take the device from `programmed` to `desired`, removals included. */
export function peerChanges(programmed: PeerTable, desired: PeerTable): PeerBatches {
  const neighbours: string[] = [];
  const forwarding: string[] = [];
  for (const ip of programmed.keys()) {
    if (desired.has(ip)) continue;
    neighbours.push(`neigh del ${ip} dev ${VXLAN}`);
    forwarding.push(`fdb del ${macForIp(ip)} dev ${VXLAN} self`);
  }
  for (const [ip, vtep] of desired) {
    if (programmed.get(ip) === vtep) continue;
    const mac = macForIp(ip);
    forwarding.push(`fdb replace ${mac} dev ${VXLAN} dst ${vtep} self permanent`);
    neighbours.push(`neigh replace ${ip} lladdr ${mac} dev ${VXLAN} nud permanent`);
  }
  return { neighbours, forwarding };
}
