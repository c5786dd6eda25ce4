/**
 * The import graph of the TypeScript tree, read from the sources: which module imports which
 * (static imports, `export ... from`, dynamic `import()`), for the layout tests that forbid cycles
 * and arrows against DESIGN.md. Type-only imports count too: a cycle of types is still a cycle of
 * ideas, and it is how the real cycles start.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';

export interface ImportGraph {
  /** module path (repo-relative, .ts) -> the repo-relative modules it imports */
  edges: Map<string, string[]>;
}

const SPECIFIER = /(?:^|[^\w.])(?:import|export)\s*(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/gm;

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
}

/** Every .ts file under `roots` (repo-relative folders) and the modules each imports. */
export function readImportGraph(repo: string, roots: string[]): ImportGraph {
  const files: string[] = [];
  for (const r of roots) walk(join(repo, r), files);
  const known = new Set(files.map((f) => relative(repo, f)));
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const from = relative(repo, file);
    const source = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const m of source.matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2])!;
      const base = posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, '');
      const target = [`${base}.ts`, `${base}/index.ts`].find((c) => known.has(c));
      if (target && !targets.includes(target)) targets.push(target);
    }
    edges.set(from, targets);
  }
  return { edges };
}

/** Every cycle's strongly connected component (Tarjan), each as its modules, sorted. */
export function importCycles(graph: ImportGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.edges.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); component.push(w); } while (w !== v);
      const selfLoop = (graph.edges.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) cycles.push(component.sort());
    }
  };
  for (const v of [...graph.edges.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}
