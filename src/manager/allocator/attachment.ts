/**
 * Network attachments of standalone containers (`container run --network NAME` on an attachable
 * network), as Docker Swarm makes them: a task without a service, fixed to the container's node,
 * that the leader gives an address like any other task. The node runs nothing for it; its address
 * makes the container an endpoint of the overlay (tunnels, neighbours, DNS) on every node.
 */
import type { NetworkObject, TaskObject } from '../../api/objects.js';
import { isTerminal, matchRef } from '../../api/objects.js';

export class AttachmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttachmentError';
  }
}

export interface AttachmentRequest {
  network: string;
  containerId: string;
  containerName: string;
}

const CONTAINER_ID_RE = /^[0-9a-f]{12,64}$/;
const CONTAINER_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** The network a container may join, or why it may not. */
export function attachableNetwork(networks: NetworkObject[], req: AttachmentRequest): NetworkObject {
  if (!CONTAINER_ID_RE.test(req.containerId)) throw new AttachmentError(`invalid container id "${req.containerId}"`);
  if (!CONTAINER_NAME_RE.test(req.containerName)) throw new AttachmentError(`invalid container name "${req.containerName}"`);
  const { match: network, ambiguous } = matchRef(networks, req.network, (n) => n.spec.name);
  if (ambiguous) throw new AttachmentError(`network ${req.network} is ambiguous (${ambiguous} matches)`);
  if (!network) throw new AttachmentError(`network ${req.network} not found`);
  if (network.spec.ingress) throw new AttachmentError(`network ${network.spec.name} is the routing mesh's: containers cannot join it`);
  if (!network.spec.attachable) {
    throw new AttachmentError(`network ${network.spec.name} is not manually attachable: create it with --attachable to run containers on it`);
  }
  return network;
}

export function isAttachment(t: TaskObject): boolean {
  return t.attachment !== undefined && t.attachment !== null;
}

/** The container's live attachment to `networkId` on `nodeId`, if it has one already (a retried request). */
export function existingAttachment(tasksOfNode: TaskObject[], networkId: string, containerId: string): TaskObject | undefined {
  return tasksOfNode.find((t) => t.attachment?.containerId === containerId && t.spec.networks[0] === networkId
    && t.desiredState === 'running' && !isTerminal(t.status.state));
}

/** The task that holds a container's place on a network until the leader gives it an address. */
export function attachmentTask(id: string, nodeId: string, network: NetworkObject, req: AttachmentRequest, now: string): TaskObject {
  return {
    id,
    meta: { version: 0, createdAt: '', updatedAt: '' },
    serviceId: '',
    serviceName: req.containerName,
    slot: 0,
    nodeId,
    spec: {
      image: '', command: [], args: [], env: [], workingDir: '', user: '', hostname: '', mounts: [],
      resources: { reservations: { nanoCpus: 0, memoryBytes: 0 }, limits: { nanoCpus: 0, memoryBytes: 0, pids: 0 } },
      restartPolicy: { condition: 'none', delayMs: 0, maxAttempts: 0, windowMs: 0 },
      placement: { constraints: [], preferences: [], maxReplicasPerNode: 0 },
      stopGracePeriodMs: 0, stopSignal: '', networks: [network.id],
    },
    specVersion: 0,
    desiredState: 'running',
    status: { state: 'new', timestamp: now, message: `attachment of container ${req.containerName}`, error: '', exitCode: 0, containerId: req.containerId },
    networks: [],
    attachment: { containerId: req.containerId, containerName: req.containerName },
  };
}
