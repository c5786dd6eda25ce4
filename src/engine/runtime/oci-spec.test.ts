import { describe, expect, it } from 'vitest';
import { buildOciSpec, DEFAULT_CAPABILITIES, mergeEnv, resolveCommand, type ImageRuntimeConfig } from './oci-spec.js';
import { withSpecDefaults } from '../../api/container-spec.js';
import type { ContainerSpec } from '../../api/container.js';

const image: ImageRuntimeConfig = { env: ['PATH=/bin', 'A=image'], entrypoint: ['/entry'], cmd: ['default', 'args'], workingDir: '/srv', user: '' };
const spec = (over: Partial<ContainerSpec>) => ({ ...withSpecDefaults({ image: 'x', hostname: 'h1', ...over }) }) as unknown as ContainerSpec;

describe('resolveCommand (docker rules)', () => {
  it('uses the image entrypoint and cmd when nothing is given', () => {
    expect(resolveCommand(spec({}), image)).toEqual(['/entry', 'default', 'args']);
  });
  it('replaces only the cmd when a command is given', () => {
    expect(resolveCommand(spec({ cmd: ['x'] }), image)).toEqual(['/entry', 'x']);
  });
  it('drops the image cmd when the entrypoint is overridden', () => {
    expect(resolveCommand(spec({ entrypoint: ['/bin/sh'], entrypointSet: true }), image)).toEqual(['/bin/sh']);
    expect(resolveCommand(spec({ entrypoint: [], entrypointSet: true, cmd: ['ls'] }), image)).toEqual(['ls']);
  });
});

describe('mergeEnv', () => {
  it('lets the container override the image and keeps PATH', () => {
    expect(mergeEnv(['PATH=/bin', 'A=1'], ['A=2', 'B=3'])).toEqual(['PATH=/bin', 'A=2', 'B=3']);
    expect(mergeEnv([], ['X=1'])[1]).toMatch(/^PATH=/);
  });
});

describe('buildOciSpec', () => {
  const build = (over: Partial<ContainerSpec>, uid = 0) => buildOciSpec({
    id: 'c1', spec: spec(over), image, rootfs: '/r', uid, gid: uid, additionalGids: [], cgroupsPath: '/tsswarm/c1',
    etcFiles: { hosts: '/h', hostname: '/hn', resolvConf: '/rc' },
  }) as any;

  it('maps resource limits to the runtime spec', () => {
    const s = build({ memoryBytes: 64 << 20, nanoCpus: 500_000_000, pidsLimit: 32 });
    expect(s.linux.resources.memory).toEqual({ limit: 64 << 20 });
    expect(s.linux.resources.cpu).toEqual({ quota: 50_000, period: 100_000 });
    expect(s.linux.resources.pids).toEqual({ limit: 32 });
    expect(s.linux.cgroupsPath).toBe('/tsswarm/c1');
  });
  it('gives a new network namespace for --network none and none for host', () => {
    const types = (s: any) => s.linux.namespaces.map((n: any) => n.type);
    expect(types(build({ network: 'none' }))).toContain('network');
    expect(types(build({ network: 'host' }))).not.toContain('network');
  });
  it('gives root Docker\'s default capabilities and a non-root user none effective', () => {
    expect(build({}).process.capabilities.effective).toEqual(DEFAULT_CAPABILITIES);
    expect(build({}, 1000).process.capabilities.effective).toEqual([]);
    expect(build({}, 1000).process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
  });
  it('bind-mounts volumes read-only when asked', () => {
    const m = build({ mounts: [{ source: '/data', target: '/mnt', readOnly: true }] }).mounts.find((x: any) => x.destination === '/mnt');
    expect(m.options).toContain('ro');
    expect(m.source).toBe('/data');
  });
  it('sets the working dir from the spec, else the image', () => {
    expect(build({}).process.cwd).toBe('/srv');
    expect(build({ workingDir: '/tmp' }).process.cwd).toBe('/tmp');
  });
});
