import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ContainerAttachments } from './container-attachments.js';
import type { WireAssignment } from './wire.js';

function setup(opts: { attachFails?: boolean; live?: string[] } = {}) {
  const calls: string[] = [];
  const deps = {
    managers: {
      attachNetwork: async (r: { network: string; containerId: string }) => {
        calls.push(`attach-network ${r.network} ${r.containerId}`);
        return { taskId: 'task1', networkId: 'net1', networkName: r.network, address: '10.0.1.5' };
      },
      detachNetwork: async (taskId: string) => { calls.push(`detach-network ${taskId}`); },
      networkReady: async (id: string) => { calls.push(`ready ${id}`); },
    },
    driver: {
      attach: async (taskId: string, hostname: string, a: { networkId: string; ip: string }[]) => {
        calls.push(`driver-attach ${taskId} ${hostname} ${a[0]!.ip}`);
        if (opts.attachFails) throw new Error('veth: file exists');
        return { netnsPath: `/run/netns/x-${taskId}`, resolvConf: 'nameserver 127.0.0.11\n', hosts: '' };
      },
      detach: async (taskId: string) => { calls.push(`driver-detach ${taskId}`); },
    },
    containerIds: () => new Set(opts.live ?? []),
    log: pino({ level: 'silent' }),
  };
  return { calls, attachments: new ContainerAttachments(deps) };
}

const attachmentOf = (id: string, containerId: string): WireAssignment => ({
  action: 'update',
  task: {
    id, serviceId: '', serviceName: 'c', slot: 0, nodeId: 'n1', specVersion: 0, desiredState: 'running',
    spec: { image: '', command: [], args: [], env: [], workingDir: '', user: '', hostname: '', mounts: [], stopGracePeriodMs: 0, stopSignal: '' },
    status: { state: 'assigned', timestamp: '', message: '', error: '', exitCode: 0, containerId },
    networks: [{ networkId: 'net1', addresses: ['10.0.1.9'] }], attachment: { containerId, containerName: 'c' },
  },
});

describe('standalone containers on swarm networks (worker side)', () => {
  it('asks the managers, waits for the network, then builds the namespace', async () => {
    const { calls, attachments } = setup();
    const sandbox = await attachments.connect({ containerId: 'abc', containerName: 'c', hostname: 'h', network: 'appnet' });
    expect(sandbox).toMatchObject({ netnsPath: '/run/netns/x-task1', ip: '10.0.1.5', attachment: { taskId: 'task1', networkId: 'net1', networkName: 'appnet' } });
    expect(calls).toEqual(['attach-network appnet abc', 'ready net1', 'driver-attach task1 h 10.0.1.5']);
  });

  it('leaves nothing behind when the namespace cannot be made', async () => {
    const { calls, attachments } = setup({ attachFails: true });
    await expect(attachments.connect({ containerId: 'abc', containerName: 'c', hostname: 'h', network: 'appnet' }))
      .rejects.toThrow('cannot join network appnet: veth: file exists');
    expect(calls.slice(-2)).toEqual(['driver-detach task1', 'detach-network task1']);
  });

  it('releases the attachments of containers that are gone, and only those', async () => {
    const { calls, attachments } = setup({ live: ['alive'] });
    attachments.reconcile([attachmentOf('t-alive', 'alive'), attachmentOf('t-gone', 'gone'), { ...attachmentOf('t-removed', 'gone2'), action: 'remove' }]);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['driver-detach t-gone', 'detach-network t-gone']);
  });
});
