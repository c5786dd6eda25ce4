/** Human quantities on the command line, parsed as docker does: "64m", "1.5g", "0.5" CPUs, "10s". */

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseBytes(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid value "${text}" for ${flag}: expected a size such as 512k, 64m or 1g`);
  return Math.round(Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!);
}

export function parseNanoCpus(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`invalid value "${text}" for ${flag}: expected a positive number of CPUs such as 0.5 or 2`);
  }
  return Math.round(n * 1e9);
}

// µ written as \u00b5: an all-ASCII CLI bundle loads as a one-byte string, measurably faster.
const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations ("1m30s", "500ms", "10s"); a bare number means seconds. Returns milliseconds. */
export function parseDurationMs(flag: string, text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== t.length) throw new UsageError(`invalid duration "${text}" for ${flag}: expected e.g. 10s, 1m30s or 500ms`);
  return total;
}

export function parseInteger(flag: string, text: string, min = Number.MIN_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`invalid value "${text}" for ${flag}: expected an integer`);
  const n = Number(text);
  if (n < min) throw new UsageError(`invalid value "${text}" for ${flag}: must be at least ${min}`);
  return n;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}${units[i]}`;
}

/** "3 seconds ago", "2 hours ago": docker's relative times. */
export function formatAgo(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'} ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'} ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'} ago`;
  return `${Math.round(h / 24)} days ago`;
}
