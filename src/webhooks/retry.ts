/**
 * When to try a webhook delivery again (pure): WEBHOOK_RETRY_BASE doubling with each try,
 * capped at one hour, minus up to 20 % jitter so deliveries failed together (an endpoint that
 * was down) do not all come back in the same second; `expire` once the next try would fall
 * after WEBHOOK_RETRY_LIFETIME since the event.
 */
export interface WebhookRetryPolicy {
  baseMs: number;
  lifetimeMs: number;
  /** Default one hour. */
  capMs?: number;
}

export const RETRY_CAP_MS = 60 * 60_000;

export type WebhookRetry = { kind: "retry"; at: Date } | { kind: "expire" };

/**
 * `attempts` counts the tries made so far, the one that just failed included (≥ 1);
 * `eventAt` is when the event was written.
 */
export function nextWebhookRetry(policy: WebhookRetryPolicy, attempts: number, eventAt: Date, now: Date, random: () => number = Math.random): WebhookRetry {
  const cap = policy.capMs ?? RETRY_CAP_MS;
  // 2^(attempts-1) overflows to Infinity long after the cap applies; min() keeps it finite.
  const full = Math.min(cap, policy.baseMs * 2 ** Math.max(0, attempts - 1));
  const delay = Math.round(full * (1 - 0.2 * random()));
  const at = new Date(now.getTime() + delay);
  if (at.getTime() - eventAt.getTime() > policy.lifetimeMs) return { kind: "expire" };
  return { kind: "retry", at };
}
