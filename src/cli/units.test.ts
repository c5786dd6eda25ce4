import { describe, expect, it } from 'vitest';
import { parseBytes, parseDurationMs, parseNanoCpus, parseInteger, UsageError } from './units.js';

describe('parseBytes', () => {
  it.each([
    ['64m', 64 * 1024 ** 2], ['64M', 64 * 1024 ** 2], ['1g', 1024 ** 3], ['512k', 512 * 1024], ['1.5g', 1.5 * 1024 ** 3],
    ['100', 100], ['64mb', 64 * 1024 ** 2], ['2GiB', 2 * 1024 ** 3],
  ])('%s', (text, bytes) => expect(parseBytes('--memory', text)).toBe(bytes));

  it('names the flag and the value it refuses', () => {
    expect(() => parseBytes('--memory', 'lots')).toThrow(UsageError);
    expect(() => parseBytes('--memory', 'lots')).toThrow('invalid value "lots" for --memory');
    expect(() => parseBytes('--memory', '-5m')).toThrow(UsageError);
  });
});

describe('parseNanoCpus', () => {
  it('converts CPUs to nano-CPUs', () => {
    expect(parseNanoCpus('--cpus', '0.5')).toBe(500_000_000);
    expect(parseNanoCpus('--cpus', '2')).toBe(2_000_000_000);
  });
  it('refuses zero, negatives and words', () => {
    for (const bad of ['0', '-1', 'half', '']) expect(() => parseNanoCpus('--cpus', bad)).toThrow(UsageError);
  });
});

describe('parseDurationMs', () => {
  it.each([['10s', 10_000], ['1m30s', 90_000], ['500ms', 500], ['2h', 7_200_000], ['5', 5000]])('%s', (t, ms) =>
    expect(parseDurationMs('--update-delay', t)).toBe(ms));
  it('refuses trailing garbage', () => {
    expect(() => parseDurationMs('--update-delay', '10sx')).toThrow('invalid duration');
    expect(() => parseDurationMs('--update-delay', 's')).toThrow('invalid duration');
  });
});

describe('parseInteger', () => {
  it('enforces the minimum', () => {
    expect(parseInteger('--tail', '3', 0)).toBe(3);
    expect(() => parseInteger('--tail', '-1', 0)).toThrow('must be at least 0');
    expect(() => parseInteger('--tail', '1.5')).toThrow('expected an integer');
  });
});
