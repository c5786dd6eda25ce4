/** The control API's overlay networks: create (subnet, gateway and VNI chosen at once), inspect, remove while unused. */
import { ControlError } from '../../api/errors.js';
import { newObjectId } from '../../api/ids.js';
import { networkSpecSchema } from '../../api/network-spec.js';
import { isTerminal, type NetworkObject } from '../../api/objects.js';
import { validate, ValidationError } from '../../api/validation.js';
import { AllocationError, chooseNetworkAddressing } from '../allocator/allocator.js';
import { IpamError } from '../allocator/ipam.js';
import { networkEndpoints, type NetworkEndpoint } from '../allocator/network-endpoints.js';
import type { ControlContext } from './context.js';

export async function createNetwork(ctx: ControlContext, raw: unknown): Promise<NetworkObject> {
  const spec = validate('network spec', networkSpecSchema, raw);
  await ctx.log.barrier();
  if (ctx.store.findByName('network', spec.name)) throw new ControlError(`network name "${spec.name}" is already in use`, 'exists');
  let addressing;
  try {
    addressing = chooseNetworkAddressing(ctx.store.list('network'), spec);
  } catch (err) {
    if (err instanceof IpamError) throw new ValidationError(err.message);
    if (err instanceof AllocationError) throw new ControlError(err.message, 'conflict');
    throw err;
  }
  const network: NetworkObject = {
    id: newObjectId(), meta: { version: 0, createdAt: '', updatedAt: '' }, vni: addressing.vni,
    spec: { ...spec, subnet: addressing.subnet, gateway: addressing.gateway, ingress: false },
  };
  const [created] = await ctx.write([{ op: 'create', kind: 'network', object: network }]);
  return created as NetworkObject;
}

export async function listNetworks(ctx: ControlContext): Promise<NetworkObject[]> {
  await ctx.log.barrier();
  return ctx.store.list('network').sort((a, b) => a.spec.name.localeCompare(b.spec.name));
}

export async function getNetwork(ctx: ControlContext, ref: string): Promise<NetworkObject> {
  await ctx.log.barrier();
  return ctx.resolve('network', ref, (n) => n.spec.name);
}

/** The network and what is on it now (network-endpoints.ts). */
export async function inspectNetwork(ctx: ControlContext, ref: string): Promise<{ network: NetworkObject; endpoints: NetworkEndpoint[] }> {
  const network = await getNetwork(ctx, ref);
  return { network, endpoints: networkEndpoints(network, { services: ctx.store.list('service'), tasks: ctx.store.list('task'), nodes: ctx.store.list('node') }) };
}

/** Refused while a service names the network or a task still holds an address on it. */
export async function removeNetwork(ctx: ControlContext, ref: string): Promise<void> {
  const network = await getNetwork(ctx, ref);
  const services = ctx.store.list('service');
  const users = network.spec.ingress
    ? services.filter((s) => s.spec.endpoint.ports.length > 0)
    : services.filter((s) => s.spec.task.networks.includes(network.id));
  if (users.length > 0) {
    throw new ControlError(`network ${network.spec.name} is in use by service${users.length > 1 ? 's' : ''} ${users.map((s) => s.spec.name).join(', ')}`, 'conflict');
  }
  const attached = ctx.store.list('task').filter((t) => !isTerminal(t.status.state) && t.networks.some((a) => a.networkId === network.id));
  const containers = attached.filter((t) => t.attachment).map((t) => t.attachment!.containerName);
  if (containers.length > 0) {
    throw new ControlError(`network ${network.spec.name} is in use by container${containers.length > 1 ? 's' : ''} ${containers.join(', ')}`, 'conflict');
  }
  if (attached.length > 0) throw new ControlError(`network ${network.spec.name} is in use by ${attached.length} task(s) still stopping: try again in a moment`, 'conflict');
  await ctx.write([{ op: 'delete', kind: 'network', id: network.id, expectVersion: network.meta.version }]);
}
