/**
 * Candidate sets. A "view" is the set of nodes that pass a static key's filters (readiness,
 * availability, platform, constraints, having the generic resources at all), with its binpack index;
 * tasks with spread preferences split a view into "leaves", one per distinct tuple of label values,
 * each with its own index. Views are built on first use and kept; node availability changes are
 * applied in place.
 */

import type { ChangeLog } from './change-log.js';
import { fieldValue, type ConstraintField } from './constraint.js';
import { staticallyEligible } from './filters.js';
import type { NodeTable } from './node-table.js';
import type { OrderedIndex } from './ordered-index.js';
import type { Requirement } from './requirements.js';
import type { SchedNode } from './types.js';

/** Something whose nodes can be ranked: a view or a leaf. */
export interface CandidateSet {
  members: number[];
  index: OrderedIndex;
  /** Spread strategy: the same nodes ranked by fewest tasks overall; built on first use. */
  spreadIndex?: OrderedIndex;
}

export interface View extends CandidateSet {
  /** Any requirement with this static key: the view's membership test. */
  req: Requirement;
  mask: Uint8Array;
  preferenceGroups: Map<string, PreferenceGroups>;
}

export interface PreferenceGroups {
  leaves: Leaf[];
  /** Node position -> leaf position, -1 when the node is not in the view. */
  leafOf: Int32Array;
  byPath: Map<string, Leaf>;
  fields: readonly ConstraintField[];
}

export interface Leaf extends CandidateSet {
  position: number;
  path: string;
  /** For each preference level, the key of this leaf's group at that level (zone, zone+rack, ...). */
  levelKeys: string[];
}

export class Views {
  private readonly views = new Map<string, View>();
  /** `id:<node id>` and `host:<hostname>` (lower-cased) -> node positions; built on first need. */
  private byName: Map<string, number[]> | undefined;

  constructor(
    private readonly table: NodeTable,
    private readonly log: ChangeLog,
    /** A new persistent binpack index for tasks like `req`, registered with the log. */
    private readonly newIndex: (req: Requirement) => OrderedIndex,
  ) {}

  view(req: Requirement): View {
    let v = this.views.get(req.staticKey);
    if (v) return v;
    const members: number[] = [];
    const mask = new Uint8Array(this.table.size);
    for (const i of this.candidatesFor(req)) {
      if (!staticallyEligible(this.table, i, req)) continue;
      members.push(i);
      mask[i] = 1;
    }
    const index = this.newIndex(req);
    index.build(members);
    v = { req, members, mask, index, preferenceGroups: new Map() };
    this.views.set(req.staticKey, v);
    return v;
  }

  preferenceGroups(view: View, req: Requirement): PreferenceGroups {
    let pg = view.preferenceGroups.get(req.preferenceKey);
    if (pg) return pg;
    const byPath = new Map<string, { values: string[]; members: number[] }>();
    const leafOf = new Int32Array(this.table.size).fill(-1);
    for (const i of this.live(view.members, (j) => view.mask[j] === 1)) {
      const values = req.preferences.map((f) => fieldValue(this.table.nodes[i]!, f));
      const path = values.join('\u0000');
      let entry = byPath.get(path);
      if (!entry) byPath.set(path, (entry = { values, members: [] }));
      entry.members.push(i);
    }
    // Leaves in sorted order of their value paths, so ties between groups break the same way every time.
    const leaves: Leaf[] = [...byPath.keys()].sort().map((path, position) => {
      const { values, members } = byPath.get(path)!;
      const levelKeys = values.map((_, l) => values.slice(0, l + 1).join('\u0000'));
      for (const i of members) leafOf[i] = position;
      const index = this.newIndex(req);
      index.build(members);
      return { position, path, levelKeys, members, index };
    });
    pg = { leaves, leafOf, byPath: new Map(leaves.map((l) => [l.path, l] as const)), fields: req.preferences };
    view.preferenceGroups.set(req.preferenceKey, pg);
    return pg;
  }

  /**
   * Services pinned with `node.id==X` or `node.hostname==X` are common; look those nodes up instead
   * of scanning the cluster for every such view.
   */
  private candidatesFor(req: Requirement): Iterable<number> {
    for (const c of req.constraints) {
      if (c.operator !== '==' || (c.field.kind !== 'node.id' && c.field.kind !== 'node.hostname')) continue;
      if (!this.byName) {
        this.byName = new Map();
        for (let i = 0; i < this.table.size; i++) {
          for (const name of [`id:${this.table.nodes[i]!.id.toLowerCase()}`, `host:${this.table.nodes[i]!.hostname.toLowerCase()}`]) {
            let list = this.byName.get(name);
            if (!list) this.byName.set(name, (list = []));
            list.push(i);
          }
        }
      }
      return this.byName.get(`${c.field.kind === 'node.id' ? 'id' : 'host'}:${c.valueLower}`) ?? [];
    }
    return allPositions(this.table.size);
  }

  /** The current members of a view or leaf (member lists are cleaned lazily). */
  membersOf(set: CandidateSet, view: View, groups: PreferenceGroups | undefined): number[] {
    if (!groups) return this.live(set.members, (i) => view.mask[i] === 1);
    const position = (set as Leaf).position;
    return this.live(set.members, (i) => groups.leafOf[i] === position);
  }

  /** Node i's availability or status changed (nothing else): add it to or take it out of every view. */
  availabilityChanged(i: number): void {
    for (const view of this.views.values()) {
      const eligible = staticallyEligible(this.table, i, view.req);
      if (eligible === (view.mask[i] === 1)) continue;
      if (eligible) {
        view.mask[i] = 1;
        view.members.push(i);
        view.index.insert(i);
        view.spreadIndex?.insert(i);
      } else {
        view.mask[i] = 0;
        view.index.remove(i);
        view.spreadIndex?.remove(i);
      }
      for (const [key, pg] of view.preferenceGroups) {
        if (!eligible) {
          const leaf = pg.leaves[pg.leafOf[i]!];
          pg.leafOf[i] = -1;
          leaf?.index.remove(i);
          leaf?.spreadIndex?.remove(i);
          continue;
        }
        const leaf = pg.byPath.get(pathOf(this.table.nodes[i]!, pg));
        if (!leaf) {
          // A value no group has yet: let the groups be rebuilt when next needed.
          view.preferenceGroups.delete(key);
          continue;
        }
        pg.leafOf[i] = leaf.position;
        leaf.members.push(i);
        leaf.index.insert(i);
        leaf.spreadIndex?.insert(i);
      }
    }
  }

  /**
   * Member lists only grow (removals just clear a mask, to keep node events cheap); this drops the
   * stale and duplicate entries when a list is about to be used, and stores the clean list back.
   */
  private live(list: number[], isMember: (i: number) => boolean): number[] {
    const round = this.log.nextRound();
    let w = 0;
    for (let r = 0; r < list.length; r++) {
      const i = list[r]!;
      if (!isMember(i) || this.log.seen(i, round)) continue;
      list[w++] = i;
    }
    list.length = w;
    return list;
  }
}

function* allPositions(n: number): Iterable<number> {
  for (let i = 0; i < n; i++) yield i;
}

function pathOf(node: SchedNode, pg: PreferenceGroups): string {
  return pg.fields.map((f) => fieldValue(node, f)).join('\u0000');
}
