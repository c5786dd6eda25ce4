/**
 * The JSON documents of OCI image layouts and docker-save archives (index, manifest, image config),
 * validated with zod because they come from untrusted files, and the mapping of the image config to
 * what the runtime needs (ImageConfig).
 */
import { z } from 'zod';
import { ImageError } from './errors.js';

export interface ImageConfig {
  env: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string;
  user: string;
  /** "80/tcp", "53/udp" */
  exposedPorts: string[];
  labels: Record<string, string>;
  stopSignal?: string;
  /** Durations in nanoseconds, as in docker's image config. */
  healthcheck?: { test: string[]; interval?: number; timeout?: number; retries?: number; startPeriod?: number };
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const digestString = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'want sha256:<64 hex digits>');
const strings = z.array(z.string());

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

export const DescriptorSchema = z.looseObject({
  mediaType: z.string().optional(),
  digest: digestString,
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: z.looseObject({ architecture: z.string(), os: z.string(), variant: z.string().optional() }).optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const IndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
});

export const ManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** docker-save's manifest.json. */
export const DockerArchiveManifestSchema = z.array(z.looseObject({
  Config: z.string(),
  RepoTags: strings.nullish(),
  Layers: strings,
}));

const HealthcheckSchema = z.looseObject({
  Test: strings.nullish(),
  Interval: z.number().nullish(),
  Timeout: z.number().nullish(),
  Retries: z.number().nullish(),
  StartPeriod: z.number().nullish(),
});

/** The OCI image config, with docker's extensions (Healthcheck, Labels in docker's spelling). */
export const ImageConfigDocSchema = z.looseObject({
  created: z.string().nullish(),
  architecture: z.string().nullish(),
  os: z.string().nullish(),
  config: z.looseObject({
    Env: strings.nullish(),
    Entrypoint: strings.nullish(),
    Cmd: strings.nullish(),
    WorkingDir: z.string().nullish(),
    User: z.string().nullish(),
    ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
    Labels: z.record(z.string(), z.string()).nullish(),
    StopSignal: z.string().nullish(),
    Healthcheck: HealthcheckSchema.nullish(),
  }).nullish(),
  rootfs: z.looseObject({ type: z.string(), diff_ids: z.array(digestString) }),
});
export type ImageConfigDoc = z.infer<typeof ImageConfigDocSchema>;

/** Parses untrusted JSON text against a schema; the error names the file and the first problem. */
export function parseJson<T>(text: string, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ImageError(`${what}: not valid JSON (${(err as Error).message})`);
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new ImageError(`${what}: unexpected content${at}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** What the runtime needs from an image config document. */
export function toImageConfig(doc: ImageConfigDoc): ImageConfig {
  const c = doc.config ?? {};
  const out: ImageConfig = {
    env: c.Env ?? [],
    entrypoint: c.Entrypoint && c.Entrypoint.length > 0 ? c.Entrypoint : null,
    cmd: c.Cmd ?? null,
    workingDir: c.WorkingDir ?? '',
    user: c.User ?? '',
    exposedPorts: Object.keys(c.ExposedPorts ?? {}).sort(),
    labels: { ...(c.Labels ?? {}) },
  };
  if (c.StopSignal) out.stopSignal = c.StopSignal;
  const h = c.Healthcheck;
  if (h && h.Test && h.Test.length > 0) {
    out.healthcheck = { test: h.Test };
    if (h.Interval) out.healthcheck.interval = h.Interval;
    if (h.Timeout) out.healthcheck.timeout = h.Timeout;
    if (h.Retries) out.healthcheck.retries = h.Retries;
    if (h.StartPeriod) out.healthcheck.startPeriod = h.StartPeriod;
  }
  return out;
}

/** The inverse, for images we synthesise (importRootfs): docker's spelling of the same fields. */
export function toConfigDoc(c: ImageConfig, diffIds: string[], created: string): Record<string, unknown> {
  const config: Record<string, unknown> = {
    Env: c.env,
    Entrypoint: c.entrypoint,
    Cmd: c.cmd,
    WorkingDir: c.workingDir,
    User: c.user,
    ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])),
    Labels: c.labels,
  };
  if (c.stopSignal !== undefined) config.StopSignal = c.stopSignal;
  if (c.healthcheck !== undefined) {
    const h = c.healthcheck;
    config.Healthcheck = { Test: h.test, Interval: h.interval, Timeout: h.timeout, Retries: h.retries, StartPeriod: h.startPeriod };
  }
  return {
    created,
    architecture: goArch(),
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created, created_by: 'tsswarm image import' }],
  };
}

/** Node's process.arch in the GOARCH spelling that OCI platforms use. */
export function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}
