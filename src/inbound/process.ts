/**
 * What the inbound listener does with one accepted message for one verified token: find the
 * token's recipient (→ its message and account), classify the bytes (src/inbound/parse.ts),
 * decide the changes (src/inbound/match.ts), record them in one statement
 * (src/messages/async-outcome.ts, or unsubscribe() for a `u+` token), then store the message
 * with what was made of it in inbound_messages — junk included.
 *
 * A byte-identical report that changed something before for the same message is a duplicate and
 * changes nothing (an MTA re-sends a DSN when our 250 got lost), so a delayed DSN never writes
 * its event twice. A report about a recipient whose delivery is still being recorded (`sending`:
 * a fast MTA's DSN can beat our own outcome statement) is stored as `early` and `retry` asks the
 * listener for a 451: the sender brings it again, and then it applies (only changes count as
 * seen before). A database error throws: the listener answers 451 and the sender tries again.
 */
import { createHash } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Store } from "../db/client.js";
import { inboundMessages, recipients } from "../db/schema.js";
import { pgArray } from "../db/arrays.js";
import { newId } from "../lib/ids.js";
import { recordAsyncOutcome, type AsyncResult } from "../messages/async-outcome.js";
import { unsubscribe } from "../suppressions/unsubscribe.js";
import { decideArf, decideDsn, decidePlain, type Decision } from "./match.js";
import { parseInbound, type InboundReport } from "./parse.js";
import type { ParsedVerp } from "./verp.js";

export type InboundKind = "dsn" | "arf" | "unsubscribe" | "unknown";
export type InboundOutcome = "bounced" | "complained" | "delayed" | "unsubscribed" | "duplicate" | "early" | "ignored" | "unmatched";

/** Outcomes that changed something: the ones a re-sent copy of the same bytes must not repeat. */
const CHANGED: readonly InboundOutcome[] = ["bounced", "complained", "delayed", "unsubscribed"];

export interface InboundEnvelope {
  remoteIp: string | null;
  /** MAIL FROM; "" for the null reverse-path `<>`. */
  mailFrom: string;
  rcptTo: string;
}

export interface Processed {
  id: string;
  kind: InboundKind;
  outcome: InboundOutcome;
  /** Answer 451: the report names a recipient still being sent, so it should come again later. */
  retry: boolean;
}

type Token = Extract<ParsedVerp, { ok: true }>;

/**
 * Processes and stores one message received for one verified token. `token` is null for a
 * report to the feedback-loop address whose reported message carried no verifiable token (it
 * is stored as unmatched); `parsed` is the report when the caller already parsed the bytes.
 */
export async function processInbound(
  store: Store,
  env: InboundEnvelope,
  token: Token | null,
  raw: Buffer,
  now: Date = new Date(),
  parsed?: InboundReport,
): Promise<Processed> {
  const sha256 = createHash("sha256").update(raw).digest("hex");
  const [owner] = token
    ? await store.db
        .select({ id: recipients.id, messageId: recipients.messageId, accountId: recipients.accountId, email: recipients.email, domain: recipients.domain })
        .from(recipients)
        .where(eq(recipients.id, token.recipientId))
    : [];
  const report: InboundReport | null = token?.kind === "unsubscribe" ? null : (parsed ?? parseInbound(raw));
  const kind: InboundKind = token?.kind === "unsubscribe" ? "unsubscribe" : report!.kind === "plain-bounce" ? "dsn" : (report!.kind as InboundKind);
  const detail: Record<string, unknown> = { sha256, ...(report ? describe(report) : {}) };
  let outcome: InboundOutcome = "unmatched";
  let recipientId = owner?.id ?? null;

  if (owner && (await seenBefore(store, owner.messageId, sha256))) {
    outcome = "duplicate";
  } else if (owner && token?.kind === "unsubscribe") {
    const added = await unsubscribe(store, { accountId: owner.accountId, messageId: owner.messageId, recipientId: owner.id, email: owner.email }, "mailto", now);
    outcome = added ? "unsubscribed" : "duplicate";
  } else if (owner && report && report.kind !== "unknown") {
    const candidates = await store.db
      .select({ id: recipients.id, emailKey: recipients.emailKey })
      .from(recipients)
      .where(and(eq(recipients.messageId, owner.messageId), eq(recipients.accountId, owner.accountId), eq(recipients.domain, owner.domain)));
    const decision: Decision =
      report.kind === "dsn" ? decideDsn(report.dsn, candidates) : report.kind === "arf" ? decideArf(report.arf, candidates) : decidePlain(report.bounce, candidates);
    const results = await recordAsyncOutcome(store, owner.accountId, owner.messageId, decision.changes, now);
    outcome = results.some((r) => r.result === "ignored" && r.status === "sending") ? "early" : summarise(decision, results);
    recipientId = results.find((r) => r.result === "applied")?.recipientId ?? decision.notes.find((n) => n.recipient)?.recipient ?? owner.id;
    detail.notes = decision.notes;
    detail.results = results;
  } else if (owner) {
    outcome = "ignored";
  }

  const id = newId("inbound", now.getTime());
  await store.db.insert(inboundMessages).values({
    id,
    receivedAt: now,
    remoteIp: env.remoteIp,
    mailFrom: env.mailFrom,
    rcptTo: env.rcptTo,
    kind,
    accountId: owner?.accountId ?? null,
    messageId: owner?.messageId ?? null,
    recipientId,
    outcome,
    detail,
    size: raw.length,
    raw,
  });
  return { id, kind, outcome, retry: outcome === "early" };
}

/** The same bytes already stored for this message (any of its recipients), where they changed something. */
async function seenBefore(store: Store, messageId: string, sha256: string): Promise<boolean> {
  const rows = await store.rows(sql`
    select 1 from inbound_messages
    where recipient_id in (select id from recipients where message_id = ${messageId}) and detail->>'sha256' = ${sha256}
      and outcome = any(${pgArray(CHANGED)}::text[])
    limit 1`);
  return rows.length > 0;
}

/** The row's outcome: the strongest applied change, else why nothing happened. */
function summarise(d: Decision, results: AsyncResult[]): InboundOutcome {
  const applied = new Set(results.filter((r) => r.result === "applied").map((r) => r.recipientId));
  const changed = d.changes.filter((c) => applied.has(c.recipientId));
  if (changed.some((c) => c.to === "bounced")) return "bounced";
  if (changed.some((c) => c.to === "complained")) return "complained";
  if (changed.length) return "delayed";
  if (results.length && results.every((r) => r.result === "duplicate")) return "duplicate";
  return d.notes.some((n) => n.recipient) ? "ignored" : "unmatched";
}

/** The parsed report as stored in detail (no message body text beyond short diagnostics). */
function describe(r: InboundReport): Record<string, unknown> {
  switch (r.kind) {
    case "dsn":
      return { format: "rfc3464", subject: r.subject, dsn: r.dsn };
    case "arf":
      return { format: "rfc5965", subject: r.subject, arf: r.arf };
    case "plain-bounce":
      return { format: "plain", subject: r.subject, bounce: r.bounce };
    case "unknown":
      return { subject: r.subject, reason: r.reason };
  }
}

/**
 * The VERP token of the message a feedback report is about, for reports sent to the fixed
 * feedback-loop address (providers' loops are registered with one address, not ours per
 * message): RFC 5965 §3.2 Original-Mail-From, else the reported message's Return-Path — both
 * our `b+<token>` envelope sender. Only a token that verifies counts.
 */
export function feedbackToken(report: InboundReport, verify: (address: string) => ParsedVerp): Token | null {
  if (report.kind !== "arf") return null;
  for (const address of [report.arf.originalMailFrom, report.arf.returnedReturnPath]) {
    const v = address ? verify(address) : null;
    if (v?.ok && v.kind === "bounce") return v;
  }
  return null;
}
