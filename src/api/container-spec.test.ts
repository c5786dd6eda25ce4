import { describe, expect, it } from 'vitest';
import { validate, ValidationError } from './validation.js';
import { containerSpecSchema, withSpecDefaults } from './container-spec.js';

const check = (over: object) => validate('container spec', containerSpecSchema, withSpecDefaults({ image: 'busybox', ...over }));

describe('container spec schema', () => {
  it('accepts a minimal spec and fills defaults', () => {
    const s = check({});
    expect(s.network).toBe('none');
    expect(s.restart.name).toBe('no');
  });
  it.each([
    [{ image: '' }, 'image: an image is required'],
    [{ memoryBytes: 1024 }, 'memoryBytes: the minimum memory limit is 6 MiB'],
    [{ name: '-bad name' }, 'name: only'],
    [{ mounts: [{ source: 'relative', target: '/x', readOnly: false }] }, 'mounts.0.source: must be an absolute path'],
    [{ network: 'bad name!' }, 'network: expected none, host, bridge or a network name'],
    [{ network: 'none', ports: [{ protocol: 'tcp', hostPort: 80, containerPort: 80 }] }, 'ports'],
    [{ restart: { name: 'sometimes', maxRetries: 0 } }, 'restart.name'],
    [{ workingDir: 'rel' }, 'workingDir: must be an absolute path'],
    [{ nanoCpus: 1e15 }, 'nanoCpus: cannot exceed'],
  ])('refuses %j with one line naming the field', (over, message) => {
    expect(() => check(over)).toThrow(ValidationError);
    try { check(over); } catch (err) {
      expect((err as Error).message).toContain(message);
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
