/**
 * What the driver accepts. Everything here ends up in ip/bridge/nft batches and the resolver's line
 * protocol, so a malformed value is refused with one clear line before any command runs (a name with a
 * space or a newline would otherwise become a second command).
 */
import { z } from 'zod';
import type { NodeNetworkState, TaskAttachmentRequest } from './types.js';

const ipv4 = z.string().regex(/^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/, 'not an IPv4 address');
const cidr = z.string().regex(/^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/([0-9]|[12]\d|3[0-2])$/, 'not an IPv4 CIDR');
const dnsName = z.string().min(1).max(253).regex(/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/, 'not a DNS name');
const port = z.number().int().min(1).max(65535);

const serviceSchema = z.object({
  name: dnsName,
  mode: z.enum(['vip', 'dnsrr']),
  vip: ipv4.optional(),
  tasks: z.array(z.object({ name: dnsName, ip: ipv4 })),
});

const networkSchema = z.object({
  id: z.string().min(1).max(64),
  name: z.string().min(1).max(128),
  vni: z.number().int().min(1).max(16_777_215),
  subnet: cidr,
  gateway: ipv4,
  ingress: z.boolean(),
  nodeAddress: ipv4.optional(),
  endpoints: z.array(z.object({ ip: ipv4, vtep: ipv4 })),
  services: z.array(serviceSchema),
}).refine((n) => !n.ingress || n.nodeAddress !== undefined, { message: 'the ingress network needs this node\'s nodeAddress' });

export const nodeNetworkStateSchema = z.object({
  vtep: ipv4,
  networks: z.array(networkSchema)
    .refine((ns) => new Set(ns.map((n) => n.vni)).size === ns.length, { message: 'two networks share a VNI' })
    .refine((ns) => ns.filter((n) => n.ingress).length <= 1, { message: 'more than one ingress network' }),
  published: z.array(z.object({
    protocol: z.enum(['tcp', 'udp']),
    publishedPort: port,
    targetPort: port,
    mode: z.enum(['ingress', 'host']),
    backends: z.array(ipv4),
  })),
});

export const taskIdSchema = z.string().regex(/^[A-Za-z0-9]{1,64}$/, 'task ids are letters and digits');
export const hostnameSchema = z.string().max(253).regex(/^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/, 'not a valid hostname');
export const attachmentsSchema = z.array(z.object({ networkId: z.string().min(1).max(64), ip: ipv4 })).min(1, 'a task needs at least one network attachment');

/** Parses or throws one line naming the first problem, e.g. `networks.0.subnet: not an IPv4 CIDR`. */
export function parseOrThrow<T>(what: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.join('.');
  throw new Error(`invalid ${what}: ${path ? `${path}: ` : ''}${issue.message}`);
}

export function validState(state: unknown): NodeNetworkState {
  return parseOrThrow('network state', nodeNetworkStateSchema, state) as NodeNetworkState;
}

export function validAttachment(taskId: unknown, hostname: unknown, attachments: unknown): { taskId: string; hostname: string; attachments: TaskAttachmentRequest[] } {
  return {
    taskId: parseOrThrow('task id', taskIdSchema, taskId),
    hostname: parseOrThrow('hostname', hostnameSchema, hostname),
    attachments: parseOrThrow('attachments', attachmentsSchema, attachments),
  };
}
