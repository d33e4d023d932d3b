/**
 * From a parsed report to the changes it asks for, given the recipients it may touch: the
 * recipients of the token's message at the token recipient's destination domain (one SMTP
 * transaction carries exactly those, and only that domain's MTAs learned the token). Pure;
 * src/inbound/process.ts looks the candidates up and records the changes.
 *
 * Matching rules (issue #5; "one bounce must never suppress every recipient", useSend #337):
 * - DSN: each per-recipient block names its recipient by Final-Recipient, else
 *   Original-Recipient (RFC 3464 §2.3.1–2.3.2), compared case-insensitively with the
 *   candidates' addresses. A block naming an address that is no candidate matches nothing
 *   (an alias, or a forgery naming someone else). A block naming no address at all is the
 *   token's recipient only when the transaction had that single recipient.
 * - ARF: Original-Rcpt-To (RFC 5965 §3.2) when given, else the single candidate.
 * - Non-standard bounce: the single candidate named in the notice, else — when the notice
 *   names no address — the single candidate. Several, or an address that is no candidate → none.
 */
import { bounceKind } from "../delivery/classify.js";
import { wireAddress } from "../smtp/commands.js";
import type { AsyncChange } from "../messages/async-outcome.js";
import { COMPLAINT_TYPES, type FeedbackReport } from "./arf.js";
import type { Dsn } from "./dsn.js";
import type { PlainBounce } from "./plain-bounce.js";

export interface Candidate {
  id: string;
  /** Lower-cased address. */
  emailKey: string;
}

/** What was made of one named recipient (stored in inbound_messages.detail). */
export interface Note {
  email: string | null;
  recipient: string | null;
  decision: "bounce" | "delay" | "complaint" | "ignored" | "unmatched";
  why?: string;
}

export interface Decision {
  changes: AsyncChange[];
  notes: Note[];
}

/**
 * One form of an address for comparing: lower case, and an internationalised domain in A-labels,
 * since the envelope carried it so (src/smtp/commands.ts wireAddress) and a report names the
 * recipient as RCPT TO did, or in the Unicode form it was submitted in.
 */
const comparable = (address: string) => wireAddress(address.trim()).toLowerCase();

/** The candidate for an address, or for no address the single candidate. */
function pick(candidates: readonly Candidate[], addresses: readonly (string | null)[]): Candidate | null {
  const named = addresses.filter((a): a is string => a !== null).map(comparable);
  if (named.length === 0) return candidates.length === 1 ? candidates[0]! : null;
  for (const a of named) {
    const c = candidates.find((x) => comparable(x.emailKey) === a);
    if (c) return c;
  }
  return null;
}

/**
 * The status a DSN block means: its Status field, unless that is missing or only says the class
 * (`X.0.0`, "other undefined status", RFC 3463 §3.1) while the receiving server's own reply in
 * Diagnostic-Code carries a specific code of the same class. Exim, for one, reports a refused
 * mailbox as `Status: 5.0.0` with `Diagnostic-Code: smtp; 550 5.1.1 … User unknown`.
 */
export function effectiveStatus(status: string | null, diagnosticStatus: string | null): string | null {
  if (diagnosticStatus === null) return status;
  if (status === null) return diagnosticStatus;
  return status.endsWith(".0.0") && status[0] === diagnosticStatus[0] ? diagnosticStatus : status;
}

/** RFC 3464 §2.3.3: `failed` → bounced, `delayed` → a note; other actions change nothing. */
export function decideDsn(dsn: Dsn, candidates: readonly Candidate[]): Decision {
  const out: Decision = { changes: [], notes: [] };
  for (const b of dsn.recipients) {
    const email = b.finalRecipient ?? b.originalRecipient;
    const c = pick(candidates, [b.finalRecipient, b.originalRecipient]);
    if (!c) {
      out.notes.push({ email, recipient: null, decision: "unmatched", why: email ? "not a recipient of this transaction" : "no recipient named and several candidates" });
      continue;
    }
    const status = effectiveStatus(b.status, b.diagnosticStatus);
    const smtp = { code: b.smtpCode, enhanced: status, text: b.diagnostic ?? `${b.action ?? "unknown"} ${b.status ?? ""}`.trim() };
    const dsnInfo = { reporting_mta: dsn.reportingMta, remote_mta: b.remoteMta };
    if (b.action === "failed" && !status?.startsWith("2")) {
      // A failure without a permanent status (missing, or 4.x.x after a relay gave up) is soft.
      const kind = status?.startsWith("5") ? bounceKind(status) : "soft";
      out.changes.push({
        recipientId: c.id, to: "bounced", eventType: "email.bounced", reply: smtp,
        data: { smtp, bounce: { kind, source: "dsn" }, dsn: dsnInfo },
        ...(kind === "hard" ? { suppression: { reason: "hard_bounce" as const, detail: `dsn: ${smtp.text}`.slice(0, 500) } } : {}),
      });
      out.notes.push({ email, recipient: c.id, decision: "bounce" });
    } else if (b.action === "delayed") {
      out.changes.push({
        recipientId: c.id, to: null, eventType: "email.deferred",
        data: { smtp, source: "dsn", next_attempt_at: null, will_retry_until: b.willRetryUntil, dsn: dsnInfo },
      });
      out.notes.push({ email, recipient: c.id, decision: "delay" });
    } else {
      out.notes.push({ email, recipient: c.id, decision: "ignored", why: `action ${b.action ?? "missing"}` });
    }
  }
  return out;
}

/** A user's complaint (abuse, fraud, virus) → complained and a `complaint` suppression. */
export function decideArf(arf: FeedbackReport, candidates: readonly Candidate[]): Decision {
  const c = pick(candidates, arf.originalRcptTo);
  const email = arf.originalRcptTo[0] ?? null;
  if (!c) return { changes: [], notes: [{ email, recipient: null, decision: "unmatched", why: email ? "not a recipient of this transaction" : "no recipient named and several candidates" }] };
  if (!arf.feedbackType || !COMPLAINT_TYPES.includes(arf.feedbackType)) {
    return { changes: [], notes: [{ email, recipient: c.id, decision: "ignored", why: `feedback type ${arf.feedbackTypeRaw ?? "missing"}` }] };
  }
  const complaint = { feedback_type: arf.feedbackType, user_agent: arf.userAgent, arrival_date: arf.arrivalDate, source: "arf" };
  return {
    changes: [{
      recipientId: c.id, to: "complained", eventType: "email.complained", data: { complaint },
      suppression: { reason: "complaint", detail: `arf ${arf.feedbackType}${arf.userAgent ? ` from ${arf.userAgent}` : ""}`.slice(0, 500) },
    }],
    notes: [{ email, recipient: c.id, decision: "complaint" }],
  };
}

/** A non-standard bounce the classifier is sure of, for an unambiguous recipient only. */
export function decidePlain(b: PlainBounce, candidates: readonly Candidate[]): Decision {
  const named = b.addresses.filter((a) => candidates.some((c) => comparable(c.emailKey) === comparable(a)));
  const c = named.length === 1 ? pick(candidates, named) : named.length === 0 && b.addresses.length === 0 ? pick(candidates, []) : null;
  if (!c) {
    const why = named.length > 1 ? "several recipients named" : b.addresses.length ? "names no recipient of this transaction" : "no recipient named and several candidates";
    return { changes: [], notes: [{ email: named[0] ?? b.addresses[0] ?? null, recipient: null, decision: "unmatched", why }] };
  }
  const kind = bounceKind(b.enhanced, b.code);
  const smtp = { code: b.code, enhanced: b.enhanced, text: b.text };
  return {
    changes: [{
      recipientId: c.id, to: "bounced", eventType: "email.bounced", reply: smtp,
      data: { smtp, bounce: { kind, source: "dsn" }, dsn: { format: "plain" } },
      ...(kind === "hard" ? { suppression: { reason: "hard_bounce" as const, detail: `bounce: ${b.text}`.slice(0, 500) } } : {}),
    }],
    notes: [{ email: c.emailKey, recipient: c.id, decision: "bounce" }],
  };
}
