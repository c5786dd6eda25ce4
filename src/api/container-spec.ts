/** The container spec as it may arrive over the API: every field checked before anything is created. */
import { cpus } from 'node:os';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import type { ContainerSpec } from './container.js';

const MIN_MEMORY = 6 * 1024 * 1024;
const absolutePath = z.string().refine((p) => isAbsolute(p) && !p.split('/').includes('..'), {
  message: 'must be an absolute path without ".."',
});

export const containerSpecSchema = z.object({
  name: z.string().max(128).regex(/^([a-zA-Z0-9][a-zA-Z0-9_.-]*)?$/, 'only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'),
  image: z.string().min(1, 'an image is required'),
  cmd: z.array(z.string()),
  entrypoint: z.array(z.string()),
  entrypointSet: z.boolean(),
  env: z.array(z.string().regex(/^[^=\s][^=]*(=[\s\S]*)?$/, 'expected KEY=VALUE')),
  workingDir: z.string().refine((p) => p === '' || isAbsolute(p), 'must be an absolute path'),
  user: z.string().regex(/^([a-zA-Z0-9_.-]+(:[a-zA-Z0-9_.-]+)?)?$/, 'expected user[:group] or uid[:gid]'),
  hostname: z.string().max(63).regex(/^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)?$/, 'not a valid hostname'),
  memoryBytes: z.number().int().nonnegative().refine((v) => v === 0 || v >= MIN_MEMORY, 'the minimum memory limit is 6 MiB'),
  nanoCpus: z.number().int().nonnegative().refine((v) => v <= cpus().length * 1e9, {
    message: `cannot exceed the ${cpus().length} CPUs of this node`,
  }),
  pidsLimit: z.number().int().min(-1),
  restart: z.object({
    name: z.union([z.literal(''), z.enum(['no', 'on-failure', 'always', 'unless-stopped'])]).transform((n) => n || 'no'),
    maxRetries: z.number().int().nonnegative(),
  }),
  mounts: z.array(z.object({ source: absolutePath, target: absolutePath, readOnly: z.boolean() })),
  // none, host, bridge, or a swarm network's name or id (an attachable overlay).
  network: z.string().max(128).regex(/^([a-zA-Z0-9][a-zA-Z0-9_.-]*)?$/, 'expected none, host, bridge or a network name').transform((n) => n || 'none'),
  ports: z.array(z.object({
    protocol: z.union([z.literal(''), z.enum(['tcp', 'udp'])]).transform((p) => p || 'tcp'),
    hostPort: z.number().int().min(1).max(65535),
    containerPort: z.number().int().min(1).max(65535),
  })),
  sandbox: z.object({
    netnsPath: absolutePath,
    resolvConf: z.string(),
    hosts: z.string(),
  }).optional(),
  autoRemove: z.boolean(),
  readOnly: z.boolean(),
  securityOpt: z.array(z.string().max(1 << 20).regex(/^(seccomp[=:](unconfined|\{[\s\S]*\})|no-new-privileges([=:](true|false))?)$/,
    'expected seccomp=unconfined, seccomp=<profile JSON> or no-new-privileges[=true|false]')),
  stopSignal: z.string(),
  stopTimeout: z.number().int().nonnegative().max(3600),
  labels: z.record(z.string(), z.string()),
}).refine((s) => s.ports.length === 0 || s.network === 'bridge', {
  message: 'ports can only be published on the bridge network (--network bridge)', path: ['ports'],
}) satisfies z.ZodType<ContainerSpec, unknown>;

/** Fills what an older or sparse client left out, so the schema sees a complete object. */
export function withSpecDefaults(input: Partial<ContainerSpec>): Record<string, unknown> {
  return {
    name: '', cmd: [], entrypoint: [], entrypointSet: false, env: [], workingDir: '', user: '', hostname: '',
    memoryBytes: 0, nanoCpus: 0, pidsLimit: 0, mounts: [], network: 'none', autoRemove: false,
    readOnly: false, securityOpt: [], stopSignal: '', stopTimeout: 10, labels: {}, ports: [],
    ...input,
    restart: { name: 'no', maxRetries: 0, ...(input.restart ?? {}) },
  };
}
