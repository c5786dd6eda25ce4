import { describe, expect, test } from 'vitest';
import { ImageError } from './errors.js';
import { normalizeRef, tryParseReference } from './reference.js';

describe('references', () => {
  test.each([
    ['busybox', 'busybox:latest'],
    ['busybox:1.36', 'busybox:1.36'],
    ['docker.io/library/busybox', 'busybox:latest'],
    ['index.docker.io/demo/busybox:v2', 'demo/busybox:v2'],
    ['demo/busybox', 'demo/busybox:latest'],
    ['localhost:5000/a/b:c_d.e-f', 'localhost:5000/a/b:c_d.e-f'],
    ['registry.example.com/x', 'registry.example.com/x:latest'],
    ['a__b/c-d--e.f', 'a__b/c-d--e.f:latest'],
  ])('%s → %s', (input, want) => {
    expect(normalizeRef(input)).toBe(want);
  });

  test.each([
    ['Bad:Tag!', /invalid reference "Bad:Tag!": invalid tag "Tag!"/],
    ['Busybox', /repository name must be lowercase/],
    ['busybox@sha256:abcd', /digest references/],
    ['', /empty reference/],
    ['a/-b', /invalid repository name component "-b"/],
    ['x:', /invalid tag ""/],
  ])('%j is refused', (input, msg) => {
    expect(() => normalizeRef(input)).toThrow(ImageError);
    expect(() => normalizeRef(input)).toThrow(msg);
  });

  test('an id-looking string is still a valid name', () => {
    expect(tryParseReference('0123456789ab')).toEqual({ name: '0123456789ab', tag: 'latest' });
  });
});
