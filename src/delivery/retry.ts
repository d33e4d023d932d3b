/**
 * When to try a deferred recipient again: RETRY_SCHEDULE's delays in order (the last one
 * repeats), with ±10 % jitter so recipients deferred together do not return together. The
 * position in the schedule is the number of tries or, if further, where the time in the queue
 * has got to: a deferral that never reached a server (DNS failing, an MTA-STS refusal) counts
 * no try but must back off all the same. The last try is made at MAX_QUEUE_LIFETIME, and a
 * failure then is final (RFC 5321 §4.5.4.1: give up after 4–5 days).
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
  const deadline = queuedAt.getTime() + policy.lifetimeMs;
  if (now.getTime() >= deadline) return { kind: "expire" };
  const age = now.getTime() - queuedAt.getTime();
  let byAge = 1;
  for (let sum = policy.schedule[0] ?? 0; byAge < policy.schedule.length && sum <= age; byAge++) sum += policy.schedule[byAge]!;
  const base = policy.schedule[Math.min(Math.max(attempts, byAge, 1), policy.schedule.length) - 1] ?? 300_000;
  const delay = Math.round(base * (0.9 + 0.2 * random()));
  return { kind: "retry", at: new Date(Math.min(now.getTime() + delay, deadline)) };
}
