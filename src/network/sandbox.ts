/**
 * A network's sandbox: a namespace with a bridge (holding the gateway, or the node's address on the
 * ingress network) and the network's VXLAN device. The device is created in the daemon's namespace and
 * moved in, so its UDP socket stays on the underlay. The ingress sandbox also gets a veth to the
 * daemon's namespace, through which published ports enter.
 */
import { existsSync } from 'node:fs';
import { macForIp } from './addresses.js';
import { ipBatch, runTool, sysctlIn } from './commands.js';
import { INGRESS_LINK } from './mesh-rules.js';
import { BRIDGE, BRIDGE_INDEX, INGRESS_LINK_SANDBOX_END, VXLAN, netnsPath, type DriverNames } from './names.js';

export const VXLAN_PORT = 4789;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): the kernel refuses less headroom. */
export const VXLAN_OVERHEAD = 50;

export interface SandboxSpec {
  netns: string;
  vni: number;
  /** The bridge's address with the subnet's prefix length, e.g. 10.0.1.1/24. */
  bridgeAddress: string;
  mtu: number;
  vtep: string;
  ingress: boolean;
  /** Which network, for errors. */
  context: string;
}

export async function createSandbox(names: DriverNames, spec: SandboxSpec): Promise<void> {
  const staging = names.vxlanStaging(spec.vni);
  const daemonSide = [
    `netns add ${spec.netns}`,
    `link add ${staging} mtu ${spec.mtu} type vxlan id ${spec.vni} dstport ${VXLAN_PORT} local ${spec.vtep} nolearning proxy`,
    `link set ${staging} netns ${spec.netns} name ${VXLAN}`,
  ];
  const inside = [
    'link set lo up',
    // The bridge's MAC follows from its address like every endpoint's: on the ingress network, remote
    // tasks reply to this node's address with the MAC their proxy ARP derives from it.
    `link add ${BRIDGE} index ${BRIDGE_INDEX} address ${macForIp(spec.bridgeAddress.split('/')[0]!)} mtu ${spec.mtu} type bridge`,
    `link set ${BRIDGE} addrgenmode none`,
    `addr add ${spec.bridgeAddress} dev ${BRIDGE}`,
    `link set ${VXLAN} addrgenmode none master ${BRIDGE} up`,
    `link set ${BRIDGE} up`,
  ];
  // Bridged frames must not go through the sandbox's IP hooks (br_netfilter defaults to on).
  const sysctls = ['net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0'];
  if (spec.ingress) {
    const link = names.ingressLink();
    daemonSide.push(
      `link add ${link} type veth peer name ${INGRESS_LINK_SANDBOX_END} netns ${spec.netns}`,
      `addr add ${INGRESS_LINK.daemonEnd}/${INGRESS_LINK.prefixLength} dev ${link}`,
      `link set ${link} up`,
    );
    inside.push(
      `addr add ${INGRESS_LINK.sandboxEnd}/${INGRESS_LINK.prefixLength} dev ${INGRESS_LINK_SANDBOX_END}`,
      `link set ${INGRESS_LINK_SANDBOX_END} up`,
      `route add default via ${INGRESS_LINK.daemonEnd}`,
    );
    sysctls.push('net.ipv4.ip_forward=1');
  }
  try {
    await ipBatch(`${spec.context}: create sandbox ${spec.netns}`, daemonSide);
    await ipBatch(`${spec.context}: configure sandbox ${spec.netns}`, inside, spec.netns);
    await sysctlIn(`${spec.context}: sysctls of sandbox ${spec.netns}`, netnsPath(spec.netns), sysctls);
  } catch (err) {
    // Nothing half-made: the next apply starts from scratch.
    await removeSandbox(spec.netns, spec.ingress, spec.context).catch(() => {});
    await runTool('cleanup', 'ip', ['link', 'del', staging]).catch(() => {});
    if (spec.ingress) await runTool('cleanup', 'ip', ['link', 'del', names.ingressLink()]).catch(() => {});
    throw err;
  }
}

/**
 * Removes the sandbox. The VXLAN device (and the ingress link) are deleted first, synchronously: a
 * namespace's devices otherwise die asynchronously, and a network recreated at once with the same VNI
 * would find the old device still holding it.
 */
export async function removeSandbox(netns: string, ingress: boolean, context: string): Promise<void> {
  if (!existsSync(netnsPath(netns))) return;
  const devices = [`link del ${VXLAN}`];
  if (ingress) devices.push(`link del ${INGRESS_LINK_SANDBOX_END}`);
  await ipBatch(`${context}: remove devices of ${netns}`, devices, netns).catch(() => { /* already gone */ });
  await ipBatch(`${context}: remove sandbox ${netns}`, [`netns del ${netns}`]);
}

/** What a sandbox found after a daemon restart holds: its bridge address and programmed neighbours. */
export async function inspectSandbox(netns: string): Promise<{ bridgeAddress?: string; neighbours: string[]; ingress: boolean }> {
  const [addrs, neighs] = await Promise.all([
    runTool(`inspect ${netns}`, 'ip', ['-n', netns, '-j', 'addr', 'show']),
    runTool(`inspect ${netns}`, 'ip', ['-n', netns, '-j', 'neigh', 'show', 'dev', VXLAN]).catch(() => ({ stdout: '[]', stderr: '' })),
  ]);
  const links = JSON.parse(addrs.stdout || '[]') as { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  const bridge = links.find((l) => l.ifname === BRIDGE)?.addr_info?.find((a) => a.family === 'inet');
  const neighbours = (JSON.parse(neighs.stdout || '[]') as { dst: string; state?: string[] }[])
    .filter((n) => n.state?.includes('PERMANENT'))
    .map((n) => n.dst);
  return {
    bridgeAddress: bridge ? `${bridge.local}/${bridge.prefixlen}` : undefined,
    neighbours,
    ingress: links.some((l) => l.ifname === INGRESS_LINK_SANDBOX_END),
  };
}

/** The MTU of the link that holds `address` in the daemon's namespace (the underlay). */
export async function underlayMtu(address: string): Promise<number> {
  const { stdout } = await runTool(`find the underlay link of ${address}`, 'ip', ['-j', 'addr', 'show']);
  const links = JSON.parse(stdout || '[]') as { ifname: string; mtu: number; addr_info?: { local: string }[] }[];
  const link = links.find((l) => l.addr_info?.some((a) => a.local === address));
  if (!link) throw new Error(`no link in the daemon's network namespace has the VTEP address ${address}`);
  return link.mtu;
}
