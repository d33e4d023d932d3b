/**
 * Delivery status notifications (RFC 3464; RFC 6533 for message/global-delivery-status): the
 * machine-readable part of a multipart/report; report-type=delivery-status, as Postfix, Exim,
 * Sendmail, Exchange and the big mailbox providers send them.
 *
 * The message/delivery-status body is a group of per-message fields (§2.2: Reporting-MTA,
 * Arrival-Date, …) followed by one group per recipient (§2.3: Final-Recipient, Action, Status,
 * Diagnostic-Code, Remote-MTA, …), groups separated by empty lines. A group lacking the
 * required fields is kept with nulls; the caller decides what it can act on.
 *
 * Pure: imports nothing of the application.
 */
import { clip } from "./clip.js";
import { field, parseFieldGroups, type HeaderField } from "./headers.js";
import { bodyText, type MimeEntity } from "./mime.js";
import { findPart, reportType, returnedMessageId, typedAddress, withoutComments } from "./report.js";

/** The media types of the machine-readable DSN part (RFC 3464 §2.1, RFC 6533 §6). */
export const DSN_TYPES = ["message/delivery-status", "message/global-delivery-status"] as const;

/** RFC 3464 §2.3.3 action values. */
export const DSN_ACTIONS = ["failed", "delayed", "delivered", "relayed", "expanded"] as const;
export type DsnAction = (typeof DSN_ACTIONS)[number];

/** One per-recipient group (RFC 3464 §2.3). */
export interface DsnRecipient {
  /** Final-Recipient's address (§2.3.2), the type prefix removed. */
  finalRecipient: string | null;
  /** Original-Recipient's address (§2.3.1), when given. */
  originalRecipient: string | null;
  /** Null when absent or not one of RFC 3464's values. */
  action: DsnAction | null;
  /** The status code `class.subject.detail` (§2.3.4, RFC 3463), null when absent or malformed. */
  status: string | null;
  /** Diagnostic-Code's text after its type (§2.3.6), e.g. `550 5.1.1 <u@x>: User unknown`. */
  diagnostic: string | null;
  /** Diagnostic-Code's type, lower-cased (`smtp`, `x-postfix`, …). */
  diagnosticType: string | null;
  /** The SMTP reply code at the start of an smtp-type diagnostic. */
  smtpCode: number | null;
  /** The enhanced status code right after that reply code (RFC 2034 §4), e.g. `5.1.1`; null when absent. */
  diagnosticStatus: string | null;
  /** Remote-MTA's name (§2.3.5). */
  remoteMta: string | null;
  lastAttemptDate: string | null;
  willRetryUntil: string | null;
}

/** A parsed DSN: the per-message fields (§2.2) and the recipient groups. */
export interface Dsn {
  /** True when the root was multipart/report; report-type=delivery-status (RFC 3464 §2). */
  wellFormed: boolean;
  /** RFC 6533 message/global-delivery-status. */
  global: boolean;
  reportingMta: string | null;
  arrivalDate: string | null;
  originalEnvelopeId: string | null;
  recipients: DsnRecipient[];
  /** Message-ID of the returned message or headers (third part), if any. */
  returnedMessageId: string | null;
}

/** At most this many per-recipient groups are read (a DSN covers one transaction's recipients). */
const MAX_RECIPIENTS = 500;
const TEXT_CAP = 1_000;

/** The DSN in `root`, or null when it has no delivery-status part. */
export function parseDsn(root: MimeEntity): Dsn | null {
  const part = findPart(root, DSN_TYPES);
  if (!part) return null;
  const groups = parseFieldGroups(bodyText(part), MAX_RECIPIENTS + 1);
  const isRecipient = (g: HeaderField[]) => g.some((f) => f.name === "final-recipient" || f.name === "original-recipient" || f.name === "action");
  // §2.1: the first group holds the per-message fields; tolerate MTAs that omit it.
  const perMessage = groups[0] && !isRecipient(groups[0]) ? groups[0] : [];
  return {
    wellFormed: reportType(root) === "delivery-status",
    global: part.contentType.subtype === "global-delivery-status",
    reportingMta: mtaName(field(perMessage, "reporting-mta")),
    arrivalDate: cap(field(perMessage, "arrival-date")),
    originalEnvelopeId: cap(field(perMessage, "original-envelope-id")),
    recipients: groups.filter(isRecipient).slice(0, MAX_RECIPIENTS).map(parseRecipient),
    returnedMessageId: returnedMessageId(root),
  };
}

function parseRecipient(g: HeaderField[]): DsnRecipient {
  const action = withoutComments(field(g, "action") ?? "").toLowerCase();
  const diag = field(g, "diagnostic-code");
  const d = diag ? /^\s*([A-Za-z0-9-]+)\s*;\s*([\s\S]*)$/.exec(diag) : null;
  const diagnostic = cap(d ? d[2] : diag);
  const diagnosticType = d ? d[1]!.toLowerCase() : null;
  const code = diagnostic && diagnosticType === "smtp" ? /^([245]\d\d)(?:[ -]|$)/.exec(diagnostic) : null;
  // Only an enhanced code of the reply code's own class counts (RFC 3463 §2; RFC 2034 §4).
  const detail = code ? statusCode(diagnostic!.slice(4)) : null;
  const diagnosticStatus = detail && detail[0] === code![1]![0] ? detail : null;
  return {
    finalRecipient: typedAddress(field(g, "final-recipient")),
    originalRecipient: typedAddress(field(g, "original-recipient")),
    action: (DSN_ACTIONS as readonly string[]).includes(action) ? (action as DsnAction) : null,
    status: statusCode(withoutComments(field(g, "status") ?? "")),
    diagnostic,
    diagnosticType,
    smtpCode: code ? Number(code[1]) : null,
    diagnosticStatus,
    remoteMta: mtaName(field(g, "remote-mta")),
    lastAttemptDate: cap(field(g, "last-attempt-date")),
    willRetryUntil: cap(field(g, "will-retry-until")),
  };
}

/** RFC 3464 §2.3.4 / RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5. */
export function statusCode(value: string | undefined): string | null {
  const m = value ? /^\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)/.exec(value) : null;
  return m ? `${m[1]}.${Number(m[2])}.${Number(m[3])}` : null;
}

/** `dns; mx.example.net` → `mx.example.net` (§2.2.2 mta-name-type; mta-name). */
function mtaName(value: string | undefined): string | null {
  if (!value) return null;
  const m = /^\s*[A-Za-z0-9-]+\s*;\s*(.*)$/.exec(withoutComments(value));
  return cap((m ? m[1]! : withoutComments(value)).trim()) || null;
}

const cap = (v: string | undefined | null): string | null => (v ? clip(v.replace(/\s+/g, " ").trim(), TEXT_CAP) : null);
