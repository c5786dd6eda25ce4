/**
 * The restart policy of a slot, decided from the store alone: a task that ended is replaced after
 * `delay` (counted from when it ended), at most `maxAttempts` times within `window` (0: ever).
 * The times of the slot's restarts ride on its tasks (`restarts`), so the count survives leader
 * changes and is not limited by how much task history is kept. A new spec version starts afresh.
 */
import type { ServiceObject, TaskObject } from '../../api/objects.js';

export type RestartDecision =
  | { restart: true; restarts: string[] | undefined }
  /** `retryAt` (epoch ms): when the delay ends; absent when the attempts are used up. */
  | { restart: false; retryAt?: number };

/** Whether, and with what restart history, the slot whose newest task is `last` gets a new task. */
export function restartDecision(service: ServiceObject, last: TaskObject, now: string): RestartDecision {
  const policy = service.spec.task.restartPolicy;
  const history = last.specVersion === service.specVersion ? last.restarts ?? [] : [];
  // A task lost with its node did not fail: replace it at once, and it costs no attempt.
  if (last.status.state === 'orphaned') return { restart: true, restarts: history };
  const nowMs = Date.parse(now);
  const windowMs = policy.windowMs ?? 0;
  const recent = windowMs > 0 ? history.filter((t) => Date.parse(t) > nowMs - windowMs) : history;
  const maxAttempts = policy.maxAttempts ?? 0;
  if (maxAttempts > 0 && recent.length >= maxAttempts) return { restart: false };
  const endedAt = Date.parse(last.status.timestamp);
  const delayMs = policy.delayMs ?? 0;
  if (Number.isFinite(endedAt) && endedAt + delayMs > nowMs) return { restart: false, retryAt: endedAt + delayMs };
  return { restart: true, restarts: [...recent, now] };
}
