/**
 * When to try a deferred recipient again: RETRY_SCHEDULE's delays in order (the last one
 * repeats), with ±10 % jitter so recipients deferred together do not return together, and
 * `failed` once the next try would fall after MAX_QUEUE_LIFETIME (RFC 5321 §4.5.4.1: give up
 * after 4–5 days).
 */
export interface RetryPolicy {
  schedule: readonly number[];
  lifetimeMs: number;
}

export type RetryDecision = { kind: "retry"; at: Date } | { kind: "expire" };

/**
 * `attempts` counts tries made so far (≥ 1 after the one that just failed); `queuedAt` is when
 * the recipient became due the first time.
 */
export function nextRetry(
  policy: RetryPolicy,
  attempts: number,
  queuedAt: Date,
  now: Date,
  random: () => number = Math.random,
): RetryDecision {
  const base = policy.schedule[Math.min(Math.max(attempts, 1), policy.schedule.length) - 1] ?? 300_000;
  const delay = Math.round(base * (0.9 + 0.2 * random()));
  const at = new Date(now.getTime() + delay);
  if (at.getTime() - queuedAt.getTime() > policy.lifetimeMs) return { kind: "expire" };
  return { kind: "retry", at };
}
