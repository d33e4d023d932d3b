/**
 * What one try's result means for its delivery (pure): a 2xx succeeds; anything else — an
 * answer that is not 2xx (a 3xx included: redirects are never followed), a timeout, a refused
 * destination, a connection or TLS error — is tried again on the backoff schedule, or fails
 * once the next try would fall after the retry lifetime.
 */
import type { PostResult } from "./client.js";
import type { FinishedTry } from "./queue/complete.js";
import { nextWebhookRetry, type WebhookRetryPolicy } from "./retry.js";

export interface TriedDelivery {
  seq: number;
  /** Tries made before this one. */
  attempts: number;
  eventAt: Date;
}

export function tryOutcome(d: TriedDelivery, r: PostResult, startedAt: Date, policy: WebhookRetryPolicy, now: Date, random: () => number): FinishedTry {
  const code = r.kind === "answered" ? r.status : null;
  const response = r.kind === "answered" ? r.body : null;
  if (code !== null && code >= 200 && code < 300) return finished(d, r, startedAt, code, response, "succeeded", null, null);
  const error = r.kind === "error" ? r.error : code! >= 300 && code! < 400 ? `HTTP ${code}: redirects are not followed` : null;
  const retry = nextWebhookRetry(policy, d.attempts + 1, d.eventAt, now, random);
  if (retry.kind === "retry") return finished(d, r, startedAt, code, response, "pending", retry.at, error);
  return finished(d, r, startedAt, code, response, "failed", null, `${error ?? `HTTP ${code}`}; no 2xx within the retry lifetime`);
}

/**
 * An object literal, not a spread (`{ ...base, … }` cost microseconds per try in V8, Node 20),
 * built by a module function rather than a closure made per try.
 */
function finished(
  d: TriedDelivery,
  r: PostResult,
  startedAt: Date,
  statusCode: number | null,
  response: string | null,
  status: FinishedTry["status"],
  nextAttemptAt: Date | null,
  error: string | null,
): FinishedTry {
  return { seq: d.seq, status, nextAttemptAt, startedAt, durationMs: r.durationMs, statusCode, response, error };
}
