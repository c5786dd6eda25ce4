/**
 * A service spec as it arrives at the control API: defaults filled as Docker fills them, then every
 * field checked, so that nothing malformed reaches the replicated log.
 */
import { z } from 'zod';
import type { ServiceSpec, UpdateConfig } from './objects.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const MIN_MEMORY = 6 * 1024 * 1024;

const nonNegativeMs = z.number().int().nonnegative();
const updateConfigSchema = z.object({
  parallelism: z.number().int().nonnegative(),
  delayMs: nonNegativeMs,
  failureAction: z.enum(['pause', 'continue', 'rollback']),
  monitorMs: nonNegativeMs,
  maxFailureRatio: z.number().min(0).max(1),
  order: z.enum(['stop-first', 'start-first']),
});

const resourcesSchema = z.object({ nanoCpus: z.number().int().nonnegative(), memoryBytes: z.number().int().nonnegative() });

export const serviceSpecSchema = z.object({
  name: z.string().regex(NAME_RE, 'must be 1-63 characters of [a-zA-Z0-9_.-], starting with a letter or digit'),
  labels: z.record(z.string(), z.string()),
  task: z.object({
    image: z.string().min(1, 'an image is required'),
    command: z.array(z.string()),
    args: z.array(z.string()),
    env: z.array(z.string().regex(/^[^=\s][^=]*(=[\s\S]*)?$/, 'expected KEY=VALUE')),
    workingDir: z.string().refine((p) => p === '' || p.startsWith('/'), 'must be an absolute path'),
    user: z.string(),
    hostname: z.string().max(63),
    mounts: z.array(z.object({
      source: z.string().startsWith('/', 'must be an absolute host path'),
      target: z.string().startsWith('/', 'must be an absolute path'),
      readOnly: z.boolean(),
    })),
    resources: z.object({
      reservations: resourcesSchema,
      limits: resourcesSchema.extend({ pids: z.number().int().nonnegative() }),
    }).refine((r) => r.limits.memoryBytes === 0 || r.limits.memoryBytes >= MIN_MEMORY, {
      message: 'the minimum memory limit is 6 MiB', path: ['limits', 'memoryBytes'],
    }).refine((r) => r.limits.memoryBytes === 0 || r.reservations.memoryBytes <= r.limits.memoryBytes, {
      message: 'the memory reservation cannot exceed the limit', path: ['reservations', 'memoryBytes'],
    }).refine((r) => r.limits.nanoCpus === 0 || r.reservations.nanoCpus <= r.limits.nanoCpus, {
      message: 'the CPU reservation cannot exceed the limit', path: ['reservations', 'nanoCpus'],
    }),
    restartPolicy: z.object({
      condition: z.enum(['none', 'on-failure', 'any']),
      delayMs: nonNegativeMs,
      maxAttempts: z.number().int().nonnegative(),
      windowMs: nonNegativeMs,
    }),
    placement: z.object({
      constraints: z.array(z.string()),
      preferences: z.array(z.object({ spread: z.string().min(1) })),
      maxReplicasPerNode: z.number().int().nonnegative(),
    }),
    stopGracePeriodMs: nonNegativeMs,
    stopSignal: z.string(),
    healthcheck: z.object({
      test: z.array(z.string()),
      intervalMs: nonNegativeMs,
      timeoutMs: nonNegativeMs,
      retries: z.number().int().nonnegative(),
      startPeriodMs: nonNegativeMs,
    }).optional(),
    networks: z.array(z.string()),
    forceUpdate: z.number().int().nonnegative(),
  }),
  mode: z.union([
    z.object({ replicated: z.object({ replicas: z.number().int().nonnegative().max(100_000) }) }),
    z.object({ global: z.object({}) }),
  ]),
  update: updateConfigSchema,
  rollback: updateConfigSchema,
  endpoint: z.object({
    mode: z.enum(['vip', 'dnsrr']),
    ports: z.array(z.object({
      protocol: z.enum(['tcp', 'udp']),
      targetPort: z.number().int().min(1).max(65535),
      publishedPort: z.number().int().min(0).max(65535),
      publishMode: z.enum(['ingress', 'host']),
    })),
  }),
});

export const DEFAULT_UPDATE_CONFIG: UpdateConfig = {
  parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, order: 'stop-first',
};

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** Docker's defaults under whatever the client sent (wire messages may carry empty strings for unset enums). */
export function withServiceDefaults(input: DeepPartial<ServiceSpec>): unknown {
  const t = input.task ?? {};
  const orEmpty = <T>(v: T | '' | undefined, d: T): T => (v === '' || v === undefined ? d : v);
  const update = (u: DeepPartial<UpdateConfig> | undefined): UpdateConfig => ({
    parallelism: u?.parallelism ?? DEFAULT_UPDATE_CONFIG.parallelism,
    delayMs: u?.delayMs ?? DEFAULT_UPDATE_CONFIG.delayMs,
    failureAction: orEmpty(u?.failureAction, DEFAULT_UPDATE_CONFIG.failureAction),
    monitorMs: u?.monitorMs ?? DEFAULT_UPDATE_CONFIG.monitorMs,
    maxFailureRatio: u?.maxFailureRatio ?? DEFAULT_UPDATE_CONFIG.maxFailureRatio,
    order: orEmpty(u?.order, DEFAULT_UPDATE_CONFIG.order),
  });
  const mode = input.mode as Record<string, unknown> | undefined;
  return {
    name: input.name ?? '',
    labels: input.labels ?? {},
    task: {
      image: t.image ?? '',
      command: t.command ?? [],
      args: t.args ?? [],
      env: t.env ?? [],
      workingDir: t.workingDir ?? '',
      user: t.user ?? '',
      hostname: t.hostname ?? '',
      mounts: t.mounts ?? [],
      resources: {
        reservations: { nanoCpus: t.resources?.reservations?.nanoCpus ?? 0, memoryBytes: t.resources?.reservations?.memoryBytes ?? 0 },
        limits: { nanoCpus: t.resources?.limits?.nanoCpus ?? 0, memoryBytes: t.resources?.limits?.memoryBytes ?? 0, pids: t.resources?.limits?.pids ?? 0 },
      },
      restartPolicy: {
        condition: orEmpty(t.restartPolicy?.condition, 'any'),
        delayMs: t.restartPolicy?.delayMs ?? 5000,
        maxAttempts: t.restartPolicy?.maxAttempts ?? 0,
        windowMs: t.restartPolicy?.windowMs ?? 0,
      },
      placement: {
        constraints: t.placement?.constraints ?? [],
        preferences: t.placement?.preferences ?? [],
        maxReplicasPerNode: t.placement?.maxReplicasPerNode ?? 0,
      },
      stopGracePeriodMs: t.stopGracePeriodMs ?? 10_000,
      stopSignal: t.stopSignal ?? '',
      ...(t.healthcheck && t.healthcheck.test?.length ? { healthcheck: t.healthcheck } : {}),
      networks: t.networks ?? [],
      forceUpdate: t.forceUpdate ?? 0,
    },
    mode: mode?.global ? { global: {} } : { replicated: { replicas: (mode?.replicated as { replicas?: number } | undefined)?.replicas ?? 1 } },
    update: update(input.update),
    rollback: update(input.rollback),
    endpoint: {
      mode: orEmpty(input.endpoint?.mode, 'vip'),
      ports: (input.endpoint?.ports ?? []).map((p) => ({
        protocol: orEmpty(p.protocol, 'tcp'),
        targetPort: p.targetPort ?? 0,
        publishedPort: p.publishedPort ?? 0,
        publishMode: orEmpty(p.publishMode, 'ingress'),
      })),
    },
  };
}
