/**
 * Memory of a process as the kernel counts it, for the benchmarks' "RSS growth during ..." figures:
 * the current RSS, and the peak since it was last reset (clear_refs 5), which catches a short spike
 * that sampling every few milliseconds could miss, for any process we started (and only those).
 */
import { readFileSync, writeFileSync } from 'node:fs';

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export function rssMiB(pid: number): number {
  return statusKiB(pid, 'VmRSS') / 1024;
}

/** The peak RSS since the last resetPeakRss (or the process's start). */
export function peakRssMiB(pid: number): number {
  return statusKiB(pid, 'VmHWM') / 1024;
}

/** Sets the peak to the current RSS, so that a later peakRssMiB measures what came after. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Older kernels: the peak then covers the process's whole life, which only overstates growth.
  }
}
