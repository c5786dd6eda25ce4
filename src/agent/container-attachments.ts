/**
 * Standalone containers on swarm networks (`container run --network NAME`): the managers make the
 * attachment and give the address; this node's network driver makes the namespace the container
 * joins. Attachments whose container is gone (removed while the managers were out of reach) are
 * released when the session next lists them.
 */
import type { Logger } from 'pino';
import type { ContainerSpec } from '../api/container.js';
import type { NetworkDriver } from '../network/types.js';
import type { WireAssignment, WireNetworkAttachment } from './wire.js';

export type ContainerSandbox = NonNullable<ContainerSpec['sandbox']>;
export type ContainerAttachment = NonNullable<ContainerSandbox['attachment']>;

export interface AttachmentDeps {
  managers: {
    attachNetwork(req: { network: string; containerId: string; containerName: string }): Promise<WireNetworkAttachment>;
    detachNetwork(taskId: string): Promise<void>;
    networkReady(networkId: string, timeoutMs: number): Promise<void>;
  };
  driver: Pick<NetworkDriver, 'attach' | 'detach'>;
  /** Ids of this node's containers, including those being created. */
  containerIds(): Set<string>;
  log: Logger;
}

/** How long a new attachment may take to appear in the node's network state. */
const NETWORK_READY_MS = 10_000;

export class ContainerAttachments {
  constructor(private readonly deps: AttachmentDeps) {}

  async connect(req: { containerId: string; containerName: string; hostname: string; network: string }): Promise<ContainerSandbox> {
    const { managers, driver } = this.deps;
    const a = await managers.attachNetwork({ network: req.network, containerId: req.containerId, containerName: req.containerName });
    try {
      await managers.networkReady(a.networkId, NETWORK_READY_MS);
      const sandbox = await driver.attach(a.taskId, req.hostname, [{ networkId: a.networkId, ip: a.address }]);
      return { ...sandbox, ip: a.address, attachment: { taskId: a.taskId, networkId: a.networkId, networkName: a.networkName } };
    } catch (err) {
      await this.disconnect({ taskId: a.taskId, networkId: a.networkId, networkName: a.networkName }).catch(() => {});
      throw new Error(`cannot join network ${a.networkName}: ${(err as Error).message}`);
    }
  }

  async disconnect(attachment: ContainerAttachment): Promise<void> {
    await this.deps.driver.detach(attachment.taskId);
    await this.deps.managers.detachNetwork(attachment.taskId);
  }

  /** The session's view of this node's attachments: release those whose container is gone. */
  reconcile(assignments: WireAssignment[]): void {
    const live = this.deps.containerIds();
    for (const { task, action } of assignments) {
      if (action !== 'update' || !task.attachment || live.has(task.attachment.containerId)) continue;
      const networkId = task.networks?.[0]?.networkId ?? '';
      this.deps.log.info({ task: task.id, container: task.attachment.containerName }, 'releasing the network attachment of a container that is gone');
      void this.disconnect({ taskId: task.id, networkId, networkName: networkId })
        .catch((err) => this.deps.log.warn({ task: task.id, err: (err as Error).message }, 'releasing a network attachment failed; the next session retries'));
    }
  }
}
