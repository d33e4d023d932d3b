/**
 * Outcome classification (SPEC.md "Delivery rules"): what one try means for one recipient.
 * Pure; the worker turns it into a state transition.
 *   2xx after DATA            → delivered
 *   4xx, connection/TLS/timeout → defer (retry on RETRY_SCHEDULE)
 *   5xx                        → bounce (the receiver refused)
 *   anything else (1xx, 3xx)   → defer: not a valid final reply (RFC 5321 §4.3.2), a protocol error
 *   null MX, NXDOMAIN, guard   → fail (no retry makes sense)
 */
export type Outcome = "delivered" | "defer" | "bounce" | "fail";

export interface Reason {
  code: number | null;
  enhanced: string | null;
  text: string;
}

export interface Classified {
  outcome: Outcome;
  reason: Reason;
}

/** A reply code to an outcome (RFC 5321 §4.2.1: act on the first digit, never the text). */
export function classifyReply(code: number, enhanced: string | null, text: string): Classified {
  const reason = { code, enhanced, text };
  if (code >= 200 && code < 300) return { outcome: "delivered", reason };
  if (code >= 500 && code < 600) return { outcome: "bounce", reason };
  // 4xx, and codes no final reply may carry (a 354 to RCPT or to the final "."): temporary.
  return { outcome: "defer", reason };
}

/**
 * A reply to RCPT TO. RFC 5321 §4.5.3.1.10: RFC 821 listed "too many recipients" as 552, the
 * right code is 452, and a client SHOULD treat a 552 to RCPT as temporary (Postfix does the
 * same); anything else as `classifyReply`.
 */
export function classifyRcptReply(code: number, enhanced: string | null, text: string): Classified {
  if (code === 552) return { outcome: "defer", reason: { code, enhanced, text } };
  return classifyReply(code, enhanced, text);
}

/** A RCPT refusal that may only mean "no more recipients in this transaction" (452, or 552 per RFC 821). */
export const isTooManyRecipients = (code: number): boolean => code === 452 || code === 552;

export const defer = (text: string, enhanced: string | null = "4.4.1"): Classified => ({
  outcome: "defer",
  reason: { code: null, enhanced, text },
});

export const fail = (text: string, enhanced: string): Classified => ({
  outcome: "fail",
  reason: { code: null, enhanced, text },
});

export const bounce = (code: number, enhanced: string, text: string): Classified => ({
  outcome: "bounce",
  reason: { code, enhanced, text },
});

/**
 * Hard bounces are permanent mailbox failures that justify suppression (issue #5): 5.1.x and
 * 5.2.1 by the enhanced code; without one, only the reply codes RFC 5321 §4.2.3 gives mailbox
 * failures (550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed). A
 * 500–504 is about our command, a 552 or 554 about the message or a policy: soft, so such a
 * refusal never puts an address on the suppression list.
 */
export function bounceKind(enhanced: string | null, code: number | null = null): "hard" | "soft" {
  if (enhanced) return /^5\.(1\.\d+|2\.1)$/.test(enhanced) ? "hard" : "soft";
  return code === 550 || code === 551 || code === 553 ? "hard" : "soft";
}
