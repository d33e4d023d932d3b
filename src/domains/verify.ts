/**
 * POST /domains/{id}/verify: look every record up through the configured resolvers, judge each
 * (records.ts), and store the per-record states and the domain's status in one update.
 *
 * All or nothing: when any look-up cannot be answered (SERVFAIL, REFUSED, timeout) nothing is
 * written — no record is downgraded on a resolver's failure — and the caller gets a 503 naming
 * the look-ups that failed. A definite answer does count, both ways: a record that is gone or
 * changed is `pending`/`invalid` again, and the domain falls back to `pending` with it.
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { domains } from "../db/schema.js";
import { forgetDomains } from "./signing.js";
import type { Resolver } from "../dns/types.js";
import { AppError, notFound } from "../lib/errors.js";
import { domainView, findDomain, type DomainView } from "./domains.js";
import {
  expectedRecords,
  judgeDkim,
  judgeDmarc,
  judgeReturnPath,
  judgeSpf,
  overallStatus,
  type ExpectedRecord,
  type Judgement,
  type RecordChecks,
  type RecordSettings,
} from "./records.js";

async function check(resolver: Resolver, record: ExpectedRecord, settings: RecordSettings): Promise<Judgement> {
  const lookup = await resolver.txt(record.name);
  switch (record.purpose) {
    case "dkim":
      return judgeDkim(lookup, record);
    case "spf":
      return judgeSpf(lookup, record, settings);
    case "return_path":
      return judgeReturnPath(lookup, record, settings);
    case "dmarc":
      return judgeDmarc(lookup, record);
  }
}

/**
 * Verifies one of the account's domains now. `resolver` should not cache (a record the user has
 * just published must be seen): the HTTP layer passes one built from DNS_SERVERS with `cache: false`.
 */
export async function verifyDomain(
  db: Db,
  resolver: Resolver,
  settings: RecordSettings,
  accountId: string,
  id: string,
  now: Date = new Date(),
): Promise<DomainView> {
  const row = await findDomain(db, accountId, id);
  if (!row) throw notFound("domain");
  const records = expectedRecords(row, settings);
  const judgements = await Promise.all(records.map((r) => check(resolver, r, settings)));

  const failed = records.flatMap((r, i) => (judgements[i]!.status === "temporary" ? [`${r.purpose} (${judgements[i]!.detail})`] : []));
  if (failed.length > 0) {
    throw new AppError("dns_unavailable", `DNS look-ups failed temporarily, so nothing was changed; try again later: ${failed.join("; ")}`);
  }

  const checkedAt = now.toISOString();
  const checks: RecordChecks = { ...row.checks };
  records.forEach((r, i) => {
    const j = judgements[i]!;
    if (j.status !== "temporary") checks[r.purpose] = { status: j.status, checked_at: checkedAt, detail: j.detail };
  });
  const status = overallStatus(records, checks);
  const verifiedAt = status !== "verified" ? null : row.status === "verified" && row.verifiedAt ? row.verifiedAt : now;

  const [updated] = await db
    .update(domains)
    .set({ checks, status, verifiedAt })
    .where(and(eq(domains.id, row.id), eq(domains.accountId, accountId)))
    .returning();
  if (!updated) throw notFound("domain"); // deleted while we were looking
  forgetDomains();
  return domainView(updated, settings);
}
