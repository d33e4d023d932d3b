/**
 * Abuse Reporting Format feedback reports (RFC 5965): multipart/report;
 * report-type=feedback-report with a human-readable part, a message/feedback-report part of
 * header-like fields (§3.1), and the reported message or its headers as the third part.
 * Mailbox providers' feedback loops send these when a user presses "this is spam".
 *
 * Pure: imports nothing of the application.
 */
import { clip } from "./clip.js";
import { field, fieldsNamed, parseFields } from "./headers.js";
import { bodyText, type MimeEntity } from "./mime.js";
import { findPart, plainAddress, reportType, returnedField, returnedMessageId } from "./report.js";

/** RFC 5965 §7.3 registered feedback types (and RFC 6591's auth-failure). */
export const FEEDBACK_TYPES = ["abuse", "fraud", "other", "virus", "not-spam", "auth-failure"] as const;
export type FeedbackType = (typeof FEEDBACK_TYPES)[number];

/** The feedback types that are a user's complaint about the mail: they justify `complained`. */
export const COMPLAINT_TYPES: readonly FeedbackType[] = ["abuse", "fraud", "virus"];

/** A parsed feedback report (RFC 5965 §3.1–3.2 fields). */
export interface FeedbackReport {
  /** True when the root was multipart/report; report-type=feedback-report (RFC 5965 §2). */
  wellFormed: boolean;
  /** Lower-cased; null when absent or unregistered (treated as no complaint). */
  feedbackType: FeedbackType | null;
  /** The value as sent, for inspection (e.g. an unregistered type). */
  feedbackTypeRaw: string | null;
  userAgent: string | null;
  version: string | null;
  originalMailFrom: string | null;
  /** §3.2: Original-Rcpt-To may appear once per recipient the report covers. */
  originalRcptTo: string[];
  arrivalDate: string | null;
  reportingMta: string | null;
  sourceIp: string | null;
  /** Message-ID of the reported message (third part), when given. */
  returnedMessageId: string | null;
  /** Return-Path of the reported message (its envelope sender as delivered), when given. */
  returnedReturnPath: string | null;
}

const TEXT_CAP = 500;

/** The feedback report in `root`, or null when it has no message/feedback-report part. */
export function parseArf(root: MimeEntity): FeedbackReport | null {
  const part = findPart(root, ["message/feedback-report"]);
  if (!part) return null;
  // §3.1: one block of fields; a trailing blank line or two is common.
  const fields = parseFields(bodyText(part).replace(/^(?:[ \t]*\r?\n)+/, ""));
  const rawType = field(fields, "feedback-type")?.trim().toLowerCase() ?? null;
  return {
    wellFormed: reportType(root) === "feedback-report",
    feedbackType: rawType && (FEEDBACK_TYPES as readonly string[]).includes(rawType) ? (rawType as FeedbackType) : null,
    feedbackTypeRaw: cap(rawType),
    userAgent: cap(field(fields, "user-agent")),
    version: cap(field(fields, "version")),
    originalMailFrom: address(field(fields, "original-mail-from")),
    originalRcptTo: fieldsNamed(fields, "original-rcpt-to")
      .map(address)
      .filter((a): a is string => a !== null)
      .slice(0, 100),
    arrivalDate: cap(field(fields, "arrival-date") ?? field(fields, "received-date")),
    reportingMta: cap(field(fields, "reporting-mta")?.replace(/^\s*[A-Za-z0-9-]+\s*;\s*/, "")),
    sourceIp: cap(field(fields, "source-ip")),
    returnedMessageId: returnedMessageId(root),
    returnedReturnPath: address(returnedField(root, "return-path")),
  };
}

/** §3.2: Original-Mail-From and Original-Rcpt-To hold an RFC 5321 path, `<a@b>` (or `<>`). */
function address(value: string | undefined): string | null {
  return value ? plainAddress(value) : null;
}

const cap = (v: string | undefined | null): string | null => (v ? clip(v.replace(/\s+/g, " ").trim(), TEXT_CAP) : null);
