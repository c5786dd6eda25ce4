/**
 * What a worker must make of the cluster's networks, as the managers describe it. The agent hands the
 * whole desired state to the network driver, which reconciles the kernel to it (declarative, so that a
 * daemon restart, a missed update or a reconnect all converge the same way).
 *
 * Addresses are IPv4 without a prefix length unless the field says CIDR. A container's MAC is derived
 * from its IP (02:42 followed by the four octets), as Docker's overlay does, so peers need no MAC.
 */

export interface OverlayNetworkState {
  id: string;
  name: string;
  /** VXLAN network identifier, unique in the cluster. */
  vni: number;
  /** CIDR, e.g. 10.0.1.0/24. */
  subnet: string;
  /** The bridge's address in every node's sandbox; also where the network's DNS resolver listens. */
  gateway: string;
  /** The routing mesh's network: published ports enter through it. */
  ingress: boolean;
  /** On the ingress network: this node's own address there (the source of load-balanced traffic). */
  nodeAddress?: string;
  /**
   * Every endpoint on this network in the cluster, local ones included: task containers and, on the
   * ingress network, each node's address. `vtep` is the underlay address of the node it lives on.
   */
  endpoints: { ip: string; vtep: string }[];
  /** Services attached to this network: what DNS answers and what VIPs balance to. */
  services: ServiceEndpointState[];
}

export interface ServiceEndpointState {
  name: string;
  /** vip: the service name resolves to `vip`, and connections to it spread over `tasks`. */
  mode: 'vip' | 'dnsrr';
  vip?: string;
  /** Tasks that should receive traffic (running, and healthy where a health check is set). */
  tasks: { name: string; ip: string }[];
}

export interface PublishedPortState {
  protocol: 'tcp' | 'udp';
  publishedPort: number;
  targetPort: number;
  /** ingress: answers on every node and reaches `backends` anywhere; host: only local `backends`. */
  mode: 'ingress' | 'host';
  /** Task addresses on the ingress network. */
  backends: string[];
}

export interface NodeNetworkState {
  /** This node's underlay address: the local end of every VXLAN tunnel. */
  vtep: string;
  networks: OverlayNetworkState[];
  published: PublishedPortState[];
}

/** What a task's container joins: a network namespace prepared with its interfaces and name service. */
export interface TaskSandbox {
  /** Path of the network namespace the container must join (e.g. /run/netns/tsw-t-<task>). */
  netnsPath: string;
  /** Contents of the container's /etc/resolv.conf (pointing at the first network's resolver) and /etc/hosts. */
  resolvConf: string;
  hosts: string;
}

export interface TaskAttachmentRequest {
  networkId: string;
  /** The task's address on that network (no prefix: the network's subnet gives it). */
  ip: string;
}

export interface NetworkDriver {
  /** Reconciles sandboxes, tunnels, peers, DNS records, VIP rules and published ports to `state`. */
  apply(state: NodeNetworkState): Promise<void>;
  /**
   * Creates the task's network namespace with one interface per attachment (eth0, eth1, ... in
   * order; the first gives the default route and the resolver). The networks must be in the last
   * applied state. Idempotent for the same task.
   */
  attach(taskId: string, hostname: string, attachments: TaskAttachmentRequest[]): Promise<TaskSandbox>;
  /** Removes the task's namespace and everything made for it; a no-op for an unknown task. */
  detach(taskId: string): Promise<void>;
  /** Removes every namespace, link, rule and process this driver made (daemon shutdown, swarm leave). */
  close(): Promise<void>;
}
