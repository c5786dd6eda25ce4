/**
 * The command line of native/build/tsswarm-netattach, which makes a task's network namespace and its
 * veths in one process over rtnetlink (see native/README.md): no `unshare` + `ip -batch` process tree,
 * which costs more than the kernel's work.
 */
export interface NetattachLink {
  /** The network's sandbox namespace (by name, under /run/netns). */
  sandbox: string;
  ip: string;
  prefixLength: number;
  mtu: number;
}

export interface NetattachSpec {
  netns: string;
  /** The host end's name, the same in every sandbox. */
  veth: string;
  /** In order: eth0, eth1, ... */
  links: NetattachLink[];
  gateway?: string;
  /** An nftables ruleset file applied inside the namespace at the end. */
  rulesFile?: string;
}

export function netattachArgs(spec: NetattachSpec): string[] {
  const args: string[] = [];
  if (spec.gateway) args.push('-g', spec.gateway);
  if (spec.rulesFile) args.push('-f', spec.rulesFile);
  args.push(spec.netns, spec.veth, ...spec.links.map((l) => `${l.sandbox},${l.ip}/${l.prefixLength},${l.mtu}`));
  return args;
}
