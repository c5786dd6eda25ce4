/**
 * Placement constraints, parsed the way Docker (SwarmKit) parses them: `KEY==VALUE` or `KEY!=VALUE`,
 * whitespace around the parts ignored, values compared case-insensitively, a missing label treated as
 * the empty string. One deliberate difference: an unknown key is a parse error here, because SwarmKit's
 * silent "never matches" turns a typo into a service that never starts.
 */

import type { SchedNode } from './types.js';

export type ConstraintOperator = '==' | '!=';

export type ConstraintField =
  | { kind: 'node.id' }
  | { kind: 'node.hostname' }
  | { kind: 'node.role' }
  | { kind: 'node.platform.os' }
  | { kind: 'node.platform.arch' }
  | { kind: 'node.labels'; label: string }
  | { kind: 'engine.labels'; label: string };

export interface Constraint {
  /** The expression as written, trimmed: used in error messages. */
  text: string;
  field: ConstraintField;
  operator: ConstraintOperator;
  value: string;
  /** Lower-cased once here so matching stays a plain string compare. */
  valueLower: string;
}

export class ConstraintSyntaxError extends Error {
  constructor(
    readonly expression: string,
    readonly problem: string,
  ) {
    super(`invalid constraint "${expression}": ${problem}`);
    this.name = 'ConstraintSyntaxError';
  }
}

// SwarmKit's character classes for keys and values.
const KEY_RE = /^[a-z_][a-z0-9\-_.]+$/i;
const VALUE_RE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;

const FIXED_FIELDS: Record<string, ConstraintField> = {
  'node.id': { kind: 'node.id' },
  'node.hostname': { kind: 'node.hostname' },
  'node.role': { kind: 'node.role' },
  'node.platform.os': { kind: 'node.platform.os' },
  'node.platform.arch': { kind: 'node.platform.arch' },
};

/** Parse one expression; throws `ConstraintSyntaxError` with a one-line explanation. */
export function parseConstraint(expression: string): Constraint {
  const text = expression.trim();
  if (text === '') throw new ConstraintSyntaxError(expression, 'empty expression');
  const eq = text.indexOf('==');
  const ne = text.indexOf('!=');
  let at: number;
  let operator: ConstraintOperator;
  if (eq < 0 && ne < 0) {
    const hint = /[^=!]=[^=]/.test(text) ? ' (use == rather than =)' : '';
    throw new ConstraintSyntaxError(expression, `expected an operator == or !=${hint}`);
  } else if (ne < 0 || (eq >= 0 && eq < ne)) {
    at = eq;
    operator = '==';
  } else {
    at = ne;
    operator = '!=';
  }
  const key = text.slice(0, at).trim();
  const value = text.slice(at + 2).trim();
  if (key === '') throw new ConstraintSyntaxError(expression, 'missing key before the operator');
  if (!KEY_RE.test(key)) throw new ConstraintSyntaxError(expression, `malformed key "${key}"`);
  if (value === '') throw new ConstraintSyntaxError(expression, 'missing value after the operator');
  if (!VALUE_RE.test(value)) throw new ConstraintSyntaxError(expression, `malformed value "${value}"`);
  return { text: `${key}${operator}${value}`, field: parseField(expression, key), operator, value, valueLower: value.toLowerCase() };
}

/** Parse a list; the first malformed expression throws. */
export function parseConstraints(expressions: readonly string[]): Constraint[] {
  return expressions.map(parseConstraint);
}

function parseField(expression: string, key: string): ConstraintField {
  const fixed = FIXED_FIELDS[key.toLowerCase()];
  if (fixed) return fixed;
  // The prefix is case-insensitive, the label name is not (labels are case-sensitive maps).
  const lower = key.toLowerCase();
  for (const kind of ['node.labels', 'engine.labels'] as const) {
    if (lower.startsWith(kind + '.')) {
      const label = key.slice(kind.length + 1);
      if (label === '') throw new ConstraintSyntaxError(expression, `missing label name after "${kind}."`);
      return { kind, label };
    }
  }
  throw new ConstraintSyntaxError(
    expression,
    `unknown key "${key}" (expected node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name>)`,
  );
}

/** The node's value for a constraint's field; a missing label reads as "". */
export function fieldValue(node: SchedNode, field: ConstraintField): string {
  switch (field.kind) {
    case 'node.id':
      return node.id;
    case 'node.hostname':
      return node.hostname;
    case 'node.role':
      return node.role;
    case 'node.platform.os':
      return node.platform?.os ?? '';
    case 'node.platform.arch':
      return node.platform?.arch ?? '';
    case 'node.labels':
      return node.labels?.[field.label] ?? '';
    case 'engine.labels':
      return node.engineLabels?.[field.label] ?? '';
  }
}

export function constraintMatches(node: SchedNode, c: Constraint): boolean {
  const v = fieldValue(node, c.field);
  // Exact match first: lower-casing allocates, and most comparisons are decided by length or bytes.
  const equal = v === c.value || (v.length === c.value.length && v.toLowerCase() === c.valueLower);
  return c.operator === '==' ? equal : !equal;
}

/** Parse a preference's `node.labels.zone`-style key (only label fields make sense for spreading). */
export function parsePreferenceKey(spread: string): ConstraintField {
  const key = spread.trim();
  const lower = key.toLowerCase();
  for (const kind of ['node.labels', 'engine.labels'] as const) {
    if (lower.startsWith(kind + '.') && key.length > kind.length + 1) return { kind, label: key.slice(kind.length + 1) };
  }
  const fixed = FIXED_FIELDS[lower];
  if (fixed) return fixed;
  throw new ConstraintSyntaxError(`spread=${spread}`, `unknown spread key "${key}" (expected node.labels.<name>)`);
}
