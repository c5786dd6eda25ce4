/**
 * Registry transfers shown as docker shows them: a line per layer that changes in place on a
 * terminal ("a3ed95caeb02: Downloading [=====>      ]  12.3MB/40.1MB"), and on anything else one
 * plain line per status change, without the byte counts, so that logs stay readable.
 */
import { formatBytes } from './units.js';

export interface WireProgress {
  id: string;
  status: string;
  current: number;
  total: number;
  digest: string;
  reference: string;
  done: boolean;
  size: number;
}

const BAR_WIDTH = 50;
/** Statuses that only move bytes: on a terminal they update the layer's line, elsewhere they are not printed. */
const MOVING = new Set(['Downloading', 'Extracting', 'Pushing']);

function bar(current: number, total: number): string {
  if (total <= 0) return '';
  const filled = Math.min(BAR_WIDTH, Math.floor((current / total) * BAR_WIDTH));
  const arrow = filled < BAR_WIDTH ? '>' : '';
  return `[${'='.repeat(Math.max(0, filled - (arrow ? 1 : 0)))}${arrow}${' '.repeat(BAR_WIDTH - filled)}] ${formatBytes(current)}/${formatBytes(total)}`;
}

export class TransferProgress {
  private readonly order: string[] = [];
  private readonly lines = new Map<string, string>();
  private drawn = 0;
  private readonly lastStatus = new Map<string, string>();

  constructor(private readonly out: NodeJS.WritableStream & { isTTY?: boolean }) {}

  /** One event of the daemon's stream; the last one (done) is left to the caller to describe. */
  layer(e: WireProgress): void {
    if (!e.id) return;
    if (!this.lines.has(e.id)) this.order.push(e.id);
    const moving = MOVING.has(e.status);
    const text = `${e.id}: ${e.status}${moving && e.total > 0 ? ` ${bar(e.current, e.total)}` : ''}`;
    this.lines.set(e.id, text);
    if (this.out.isTTY) {
      this.redraw();
    } else if (!moving && this.lastStatus.get(e.id) !== e.status) {
      this.out.write(`${e.id}: ${e.status}\n`);
    }
    this.lastStatus.set(e.id, e.status);
  }

  /** Writes text below the layers' lines (which then stay as they are). */
  line(text: string): void {
    this.drawn = 0;
    this.order.length = 0;
    this.lines.clear();
    this.out.write(`${text}\n`);
  }

  private redraw(): void {
    let buf = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const id of this.order) buf += `\x1b[2K${this.lines.get(id)}\n`;
    this.drawn = this.order.length;
    this.out.write(buf);
  }
}
