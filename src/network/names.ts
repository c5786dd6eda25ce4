/**
 * Names of everything the driver makes. All namespaces carry the daemon's prefix, so several daemons
 * on one machine never collide and close() or a restarted daemon can find what is theirs.
 */

/** Interface names are at most 15 bytes; `<prefix>-ig` and `<prefix>-v<vni hex>` must fit. */
const PREFIX = /^[a-z0-9][a-z0-9-]{0,6}$/;

export function validatePrefix(prefix: string): void {
  if (!PREFIX.test(prefix)) {
    throw new Error(`network driver prefix ${JSON.stringify(prefix)} must be 1-7 characters of a-z, 0-9 and '-', starting with a letter or digit`);
  }
}

export const BRIDGE = 'br0';
export const VXLAN = 'vx0';
/** Fixed so that a veth can be enslaved to the bridge from another namespace (`master if<index>`). */
export const BRIDGE_INDEX = 100;
/** The sandbox end of the link between the daemon's namespace and the ingress sandbox. */
export const INGRESS_LINK_SANDBOX_END = 'ig0';
export const TASK_ID_CHARS = 12;

export class DriverNames {
  constructor(readonly prefix: string) {
    validatePrefix(prefix);
  }

  sandbox(vni: number): string {
    return `${this.prefix}-sb-${vni}`;
  }

  task(taskId: string): string {
    return `${this.prefix}-t-${taskId.slice(0, TASK_ID_CHARS)}`;
  }

  /** The VXLAN device's name in the daemon's namespace, before it moves into its sandbox as vx0. */
  vxlanStaging(vni: number): string {
    return `${this.prefix}-v${vni.toString(16)}`;
  }

  /** The daemon's end of the link to the ingress sandbox. */
  ingressLink(): string {
    return `${this.prefix}-ig`;
  }

  /** The nftables table of the routing mesh in the daemon's namespace. */
  meshTable(): string {
    return this.prefix;
  }

  /** Which of ours a namespace name is, if any. */
  classify(netns: string): { kind: 'sandbox'; vni: number } | { kind: 'task'; id: string } | undefined {
    if (!netns.startsWith(`${this.prefix}-`)) return undefined;
    const rest = netns.slice(this.prefix.length + 1);
    const sandbox = /^sb-(\d+)$/.exec(rest);
    if (sandbox) return { kind: 'sandbox', vni: Number(sandbox[1]) };
    const task = /^t-([A-Za-z0-9]+)$/.exec(rest);
    if (task) return { kind: 'task', id: task[1]! };
    return undefined;
  }
}

/** The host end of a task's veth in a sandbox: unique per task within that sandbox. */
export function taskVethName(taskId: string): string {
  return `t${taskId.slice(0, TASK_ID_CHARS)}`;
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}
