/**
 * Convergence progress for `service create|scale|update` as docker shows it: an overall line, one
 * line per slot (with a bar up to 20 slots), then a short verify that tasks stay up. Fails with the
 * scheduler's or worker's reason when a service cannot converge.
 */
import type { ServiceObject, TaskObject, TaskState } from '../api/objects.js';

const STEPS: TaskState[] = ['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running'];
const BAR_WIDTH = 50;

export interface SlotView {
  label: string;
  state: string;
  fraction: number;
  error: string;
}

export interface ProgressView {
  running: number;
  total: number;
  slots: SlotView[];
  /** Set when the service cannot converge: the reason, for one error line. */
  stuck?: string;
}

/** What the tasks say about the service, slot by slot (or node by node for global services). */
export function progressOf(service: ServiceObject, tasks: TaskObject[], failuresToGiveUp = 3): ProgressView {
  const replicated = 'replicated' in service.spec.mode;
  const groups = new Map<string, TaskObject[]>();
  for (const t of tasks) {
    const key = replicated ? String(t.slot) : t.nodeId;
    const list = groups.get(key) ?? [];
    list.push(t);
    groups.set(key, list);
  }
  const keys = replicated
    ? Array.from({ length: (service.spec.mode as { replicated: { replicas: number } }).replicated.replicas }, (_, i) => String(i + 1))
    : [...groups.keys()].filter((k) => groups.get(k)!.some((t) => t.desiredState === 'running')).sort();
  const slots: SlotView[] = [];
  let running = 0;
  let stuck: string | undefined;
  for (const key of keys) {
    const group = (groups.get(key) ?? []).sort((a, b) => b.meta.version - a.meta.version);
    const current = group.find((t) => t.desiredState === 'running' && t.specVersion === service.specVersion);
    const failures = group.filter((t) => t.specVersion === service.specVersion && ['failed', 'rejected'].includes(t.status.state));
    const label = replicated ? `${key}/${keys.length}` : key.slice(0, 12);
    if (!current) {
      slots.push({ label, state: 'new', fraction: 0, error: '' });
      continue;
    }
    const state = current.status.state;
    const step = STEPS.indexOf(state);
    // With a health check, a running task counts once healthy.
    const health = current.status.health;
    if (state === 'running' && (!health || health === 'healthy')) running++;
    const error = current.status.error || (failures[0]?.status.error ?? '');
    slots.push({ label, state: state === 'running' && health && health !== 'healthy' ? `${state} (${health})` : state, fraction: step < 0 ? 0 : (step + 1) / STEPS.length, error });
    if (failures.length >= failuresToGiveUp) stuck ??= `${label}: ${failures[0]!.status.error || failures[0]!.status.state}`;
  }
  return { running, total: keys.length, slots, ...(stuck ? { stuck } : {}) };
}

export function renderProgress(v: ProgressView, withBars: boolean): string[] {
  const lines = [`overall progress: ${v.running} out of ${v.total} tasks`];
  if (v.total > 20) return lines;
  for (const s of v.slots) {
    const filled = Math.round(s.fraction * BAR_WIDTH);
    const bar = withBars ? ` [${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(BAR_WIDTH - filled)}]` : '';
    lines.push(`${s.label}: ${s.state.padEnd(9)}${bar}${s.error ? ` ${s.error}` : ''}`);
  }
  return lines;
}

/** Draws progress in place on a terminal; on a pipe, prints only lines that changed. */
export class ProgressPrinter {
  private drawn = 0;
  private last = new Map<number, string>();

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  draw(lines: string[]): void {
    if (this.out.isTTY) {
      if (this.drawn) this.out.write(`\x1b[${this.drawn}A`);
      for (const l of lines) this.out.write(`\x1b[2K${l}\n`);
      this.drawn = lines.length;
      return;
    }
    lines.forEach((l, i) => {
      if (this.last.get(i) !== l) this.out.write(`${l}\n`);
      this.last.set(i, l);
    });
  }

  say(line: string): void {
    this.out.write(`${line}\n`);
    this.drawn = 0;
  }
}
