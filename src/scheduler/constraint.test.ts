import { describe, expect, it } from 'vitest';
import { ConstraintSyntaxError, constraintMatches, parseConstraint, parseConstraints } from './index.js';
import type { SchedNode } from './index.js';

const node: SchedNode = {
  id: 'n1',
  hostname: 'Web-1',
  role: 'worker',
  availability: 'active',
  status: 'ready',
  labels: { zone: 'eu-West', Tier: 'front' },
  engineLabels: { storage: 'ssd' },
  platform: { os: 'linux', arch: 'amd64' },
  resources: { nanoCPUs: 1e9, memoryBytes: 1e9 },
};

describe('parseConstraint', () => {
  it('parses every field Docker knows, trimming whitespace', () => {
    expect(parseConstraint(' node.labels.zone == eu-west ')).toMatchObject({
      text: 'node.labels.zone==eu-west',
      field: { kind: 'node.labels', label: 'zone' },
      operator: '==',
      value: 'eu-west',
    });
    expect(parseConstraint('node.role!=manager').field).toEqual({ kind: 'node.role' });
    expect(parseConstraint('NODE.HOSTNAME==web-1').field).toEqual({ kind: 'node.hostname' });
    expect(parseConstraint('node.platform.os==linux').field).toEqual({ kind: 'node.platform.os' });
    expect(parseConstraint('node.platform.arch==amd64').field).toEqual({ kind: 'node.platform.arch' });
    expect(parseConstraint('node.id==abc').field).toEqual({ kind: 'node.id' });
    expect(parseConstraint('engine.labels.storage==ssd').field).toEqual({ kind: 'engine.labels', label: 'storage' });
  });

  it('matches values case-insensitively, label names exactly, and reads a missing label as empty', () => {
    expect(constraintMatches(node, parseConstraint('node.labels.zone==EU-WEST'))).toBe(true);
    expect(constraintMatches(node, parseConstraint('node.hostname==web-1'))).toBe(true);
    expect(constraintMatches(node, parseConstraint('node.labels.Tier==front'))).toBe(true);
    expect(constraintMatches(node, parseConstraint('node.labels.tier==front'))).toBe(false);
    expect(constraintMatches(node, parseConstraint('node.labels.rack!=r1'))).toBe(true);
    expect(constraintMatches(node, parseConstraint('engine.labels.storage!=ssd'))).toBe(false);
    expect(constraintMatches(node, parseConstraint('node.role==worker'))).toBe(true);
  });

  it.each([
    ['', 'invalid constraint "": empty expression'],
    ['node.labels.zone=a', 'invalid constraint "node.labels.zone=a": expected an operator == or != (use == rather than =)'],
    ['node.labels.zone', 'invalid constraint "node.labels.zone": expected an operator == or !='],
    ['==a', 'invalid constraint "==a": missing key before the operator'],
    ['node.role==', 'invalid constraint "node.role==": missing value after the operator'],
    ['node.role==a==b', 'invalid constraint "node.role==a==b": malformed value "a==b"'],
    ['node.la bels.zone==a', 'invalid constraint "node.la bels.zone==a": malformed key "node.la bels.zone"'],
    ['node.labels.==a', 'invalid constraint "node.labels.==a": missing label name after "node.labels."'],
    [
      'node.zone==a',
      'invalid constraint "node.zone==a": unknown key "node.zone" (expected node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name>)',
    ],
  ])('rejects %j with a clear message', (text, message) => {
    expect(() => parseConstraint(text)).toThrow(ConstraintSyntaxError);
    expect(() => parseConstraint(text)).toThrow(message);
  });

  it('parseConstraints reports the first malformed expression', () => {
    expect(() => parseConstraints(['node.role==worker', 'zone=a'])).toThrow('invalid constraint "zone=a"');
  });
});
