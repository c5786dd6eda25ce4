/**
 * A task compiled into what placement needs: parsed constraints, normalised platforms, port keys and
 * two grouping keys. Tasks with the same `groupKey` are interchangeable, so a batch of them is placed
 * in one pass; tasks with the same `staticKey` accept the same set of nodes before resources are
 * counted, so they share one node index.
 */

import { ConstraintSyntaxError, parseConstraint, parsePreferenceKey, type Constraint, type ConstraintField } from './constraint.js';
import type { HostPort, Platform, TaskToPlace } from './types.js';

export interface Requirement {
  serviceId: string;
  cpu: number;
  memory: number;
  /** Generic resources with a positive amount, sorted by name. */
  generic: readonly (readonly [string, number])[];
  constraints: readonly Constraint[];
  preferences: readonly ConstraintField[];
  preferenceTexts: readonly string[];
  /** 0 = unlimited. */
  maxReplicasPerNode: number;
  /** `tcp/8080` style keys, deduplicated. */
  ports: readonly string[];
  platforms: readonly Platform[];
  /** Set when the task cannot be compiled (malformed constraint or preference): it is reported unplaced. */
  error?: string;
  staticKey: string;
  preferenceKey: string;
  groupKey: string;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armv7l: 'arm', i386: '386', i686: '386' };

export function normaliseArch(arch: string): string {
  const a = arch.trim().toLowerCase();
  return ARCH_ALIASES[a] ?? a;
}

export function portKey(p: HostPort): string {
  return `${p.protocol}/${p.port}`;
}

/** Compiles tasks, caching constraint parsing by the exact expression because services repeat them. */
export class RequirementCompiler {
  private readonly constraintCache = new Map<string, Constraint | ConstraintSyntaxError>();
  private readonly byKey = new Map<string, Requirement>();
  /**
   * Replicas of a service are usually built from the same spec objects; when every field is the very
   * same reference as the previous task of the service, the compiled form is reused without hashing.
   */
  private readonly lastOfService = new Map<string, { task: TaskToPlace; req: Requirement }>();

  compile(task: TaskToPlace): Requirement {
    const last = this.lastOfService.get(task.serviceId);
    if (last && sameShape(last.task, task)) return last.req;
    const req = this.compileSlow(task);
    this.lastOfService.set(task.serviceId, { task, req });
    return req;
  }

  private compileSlow(task: TaskToPlace): Requirement {
    const res = task.reservations;
    const cpu = Math.max(0, res?.nanoCPUs ?? 0);
    const memory = Math.max(0, res?.memoryBytes ?? 0);
    const generic = res?.generic
      ? Object.entries(res.generic)
          .filter(([, v]) => v > 0)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      : [];
    const constraintTexts = task.constraints ?? [];
    const preferenceTexts = (task.preferences ?? []).map((p) => p.spread.trim());
    const ports = [...new Set((task.hostPorts ?? []).map(portKey))].sort();
    const platforms = (task.platforms ?? []).map((p) => ({ os: p.os.trim().toLowerCase(), arch: normaliseArch(p.arch) }));
    const maxReplicasPerNode = Math.max(0, Math.floor(task.maxReplicasPerNode ?? 0));

    // Keys first: identical tasks share one compiled Requirement (and its parsed constraints).
    const staticKey = JSON.stringify([constraintTexts, platforms, generic.map(([k]) => k)]);
    const preferenceKey = JSON.stringify(preferenceTexts);
    const groupKey = JSON.stringify([task.serviceId, cpu, memory, generic, maxReplicasPerNode, ports, staticKey, preferenceKey]);
    const cached = this.byKey.get(groupKey);
    if (cached) return cached;

    let error: string | undefined;
    const constraints: Constraint[] = [];
    for (const text of constraintTexts) {
      let c = this.constraintCache.get(text);
      if (!c) {
        try {
          c = parseConstraint(text);
        } catch (e) {
          if (!(e instanceof ConstraintSyntaxError)) throw e;
          c = e;
        }
        this.constraintCache.set(text, c);
      }
      if (c instanceof ConstraintSyntaxError) {
        error ??= c.message;
      } else {
        constraints.push(c);
      }
    }
    const preferences: ConstraintField[] = [];
    for (const text of preferenceTexts) {
      try {
        preferences.push(parsePreferenceKey(text));
      } catch (e) {
        if (!(e instanceof ConstraintSyntaxError)) throw e;
        error ??= e.message;
      }
    }
    const req: Requirement = {
      serviceId: task.serviceId,
      cpu,
      memory,
      generic,
      constraints,
      preferences,
      preferenceTexts,
      maxReplicasPerNode,
      ports,
      platforms,
      staticKey,
      preferenceKey,
      groupKey,
      ...(error !== undefined ? { error } : {}),
    };
    this.byKey.set(groupKey, req);
    return req;
  }
}

function sameShape(a: TaskToPlace, b: TaskToPlace): boolean {
  return (
    a.reservations === b.reservations &&
    a.constraints === b.constraints &&
    a.preferences === b.preferences &&
    a.maxReplicasPerNode === b.maxReplicasPerNode &&
    a.hostPorts === b.hostPorts &&
    a.platforms === b.platforms
  );
}
