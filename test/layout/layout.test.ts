/**
 * The layout's contracts (DESIGN.md, README "Layout"): no import cycle anywhere, and the arrows
 * between the parts point one way. Read from the sources, so a new import against them fails here
 * with the file that made it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importCycles, readImportGraph } from '../../testkit/import-graph.js';

const REPO = resolve(import.meta.dirname, '../..');
const graph = readImportGraph(REPO, ['src', 'testkit', 'cluster-test', 'bench', 'test']);

/** The part a module belongs to: its folder under src/ (manager's and raft's subfolders are parts of their own). */
function partOf(file: string): string {
  const p = file.split('/');
  if (p[0] !== 'src') return p[0]!;
  if ((p[1] === 'manager' || p[1] === 'raft') && p.length > 3) return `${p[1]}/${p[2]}`;
  return p.length > 2 ? p[1]! : file;
}

/**
 * What each part may import besides itself. rpc (gRPC plumbing), launcher (the node's process
 * forker) and the two loose modules are libraries anyone below the daemon may use; the rest is
 * DESIGN.md's table. One arrow is there on purpose: `network create` answers a clashing subnet at
 * once, so the control API asks the allocator's pure address choice (SwarmKit defers it to the leader).
 */
const LIBRARIES = ['rpc', 'launcher', 'src/log.ts', 'src/durable-file.ts'];
const MAY_IMPORT: Record<string, string[]> = {
  api: [],
  rpc: ['api'],
  launcher: [],
  scheduler: [],
  'raft/core': [],
  'raft/storage': ['raft/core'],
  'raft/transport': ['raft/core'],
  raft: ['raft/core', 'raft/storage', 'raft/transport'],
  cli: ['api', 'rpc'],
  ca: ['api', 'rpc'],
  network: ['api', ...LIBRARIES],
  engine: ['api', ...LIBRARIES],
  agent: ['api', 'ca', 'engine', 'network', ...LIBRARIES],
  manager: ['api', 'ca', 'raft', 'manager/controlapi', 'manager/state', 'manager/orchestrator', 'manager/allocator', 'manager/dispatcher', ...LIBRARIES],
  'manager/state': ['api', 'raft', 'raft/core'],
  'manager/controlapi': ['api', 'manager/state', 'manager/allocator'],
  'manager/orchestrator': ['api', 'manager/state', 'scheduler'],
  'manager/allocator': ['api', 'manager/state'],
  'manager/dispatcher': ['api', 'manager/state', 'manager/allocator', ...LIBRARIES],
};

function arrowsAgainst(part: string, allowed: string[]): string[] {
  const bad: string[] = [];
  for (const [from, targets] of graph.edges) {
    if (partOf(from) !== part || from.endsWith('.test.ts')) continue;
    for (const t of targets) {
      const to = partOf(t);
      if (to !== part && !allowed.includes(to) && !allowed.includes(t)) bad.push(`${from} -> ${t}`);
    }
  }
  return bad;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

describe('layout', () => {
  it('has no import cycle', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  it.each(Object.entries(MAY_IMPORT))('%s imports only what DESIGN.md lets it', (part, allowed) => {
    expect(arrowsAgainst(part, allowed)).toEqual([]);
  });

  it('the scheduler and the raft core import no package and no node: module either (pure, no I/O)', () => {
    const impure = filesUnder(join(REPO, 'src/scheduler')).concat(filesUnder(join(REPO, 'src/raft/core')))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) => /from\s+'(?!\.)[^']+'/.test(readFileSync(f, 'utf8')));
    expect(impure).toEqual([]);
  });

  it('src/ ships no test-only code: tests live in *.test.ts, their tools in testkit/', () => {
    const shipped = filesUnder(join(REPO, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const testOnly = [...graph.edges].filter(([from]) => shipped.includes(join(REPO, from)))
      .flatMap(([from, targets]) => targets.filter((t) => !t.startsWith('src/')).map((t) => `${from} -> ${t}`));
    expect(testOnly).toEqual([]);
    expect(existsSync(join(REPO, 'testkit'))).toBe(true);
  });
});
