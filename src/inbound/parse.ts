/**
 * What a message received by the inbound listener is, from its bytes alone: a feedback
 * report (RFC 5965), a delivery status notification (RFC 3464 / RFC 6533), a non-standard
 * bounce the classifier is sure of, or unknown. Never throws: a parser bug on hostile input
 * becomes `unknown` with a reason, so the message is still stored for inspection.
 *
 * Pure: imports nothing of the application.
 */
import { parseArf, type FeedbackReport } from "./arf.js";
import { parseDsn, type Dsn } from "./dsn.js";
import { field } from "./headers.js";
import { parseMime } from "./mime.js";
import { classifyPlainBounce, type PlainBounce } from "./plain-bounce.js";

export type InboundReport =
  | { kind: "arf"; arf: FeedbackReport; subject: string | null }
  | { kind: "dsn"; dsn: Dsn; subject: string | null }
  | { kind: "plain-bounce"; bounce: PlainBounce; subject: string | null }
  | { kind: "unknown"; reason: string; subject: string | null };

/**
 * Classifies `raw` (the message as received, any bytes). Every string in the result is free
 * of NUL, which PostgreSQL text and jsonb cannot hold (it becomes U+FFFD).
 */
export function parseInbound(raw: Buffer): InboundReport {
  return withoutNul(classify(raw));
}

function classify(raw: Buffer): InboundReport {
  let subject: string | null = null;
  try {
    const root = parseMime(raw);
    subject = field(root.headers, "subject")?.slice(0, 300) ?? null;
    const arf = parseArf(root);
    if (arf) return { kind: "arf", arf, subject };
    const dsn = parseDsn(root);
    if (dsn) {
      if (dsn.recipients.length === 0) return { kind: "unknown", reason: "a delivery-status part without per-recipient fields", subject };
      return { kind: "dsn", dsn, subject };
    }
    const plain = classifyPlainBounce(root);
    return plain.sure ? { kind: "plain-bounce", bounce: plain.bounce, subject } : { kind: "unknown", reason: plain.reason, subject };
  } catch (err) {
    // Only a bug gets here; the message is kept and nothing is acted on.
    return { kind: "unknown", reason: `unparseable: ${err instanceof Error ? err.name : "error"}`, subject };
  }
}

function withoutNul<T>(value: T): T {
  if (typeof value === "string") return value.replace(/\0/g, "\ufffd") as T;
  if (Array.isArray(value)) return value.map(withoutNul) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNul(v)])) as T;
  }
  return value;
}
