/**
 * The suppression list as the API shows it (GET/POST/DELETE /suppressions). Every query is
 * scoped to one account: another account's entries are neither listed, found nor removed.
 * Addresses are keyed like recipients.email_key — the parsed address, lower-cased — so an entry
 * matches every spelling a message could use (`Bob@Example.ORG`, `bob@example.org`).
 */
import { sql } from "drizzle-orm";
import type { Store } from "../db/client.js";
import { AppError, notFound } from "../lib/errors.js";
import { NO_CONTROL } from "../lib/text.js";
import { parseAddrSpec } from "../mime/address.js";
import type { CreateSuppressionInput, ListSuppressionsQuery, SuppressionView } from "./schemas.js";
import type { SuppressionReason } from "./suppressions.js";

interface Row extends Record<string, unknown> {
  email: string;
  reason: SuppressionReason;
  detail: string | null;
  source_message_id: string | null;
  source_recipient_id: string | null;
  /** created_at to the microsecond (UTC, ISO without zone): the cursor must not lose precision. */
  at: string;
  email_key: string;
}

const COLUMNS = sql.raw(
  `email, reason, detail, source_message_id, source_recipient_id, email_key, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as at`,
);

function view(r: Row): SuppressionView {
  return {
    email: r.email,
    reason: r.reason,
    detail: r.detail,
    message: r.source_message_id,
    recipient: r.source_recipient_id,
    created_at: new Date(`${r.at}Z`).toISOString(),
  };
}

/** The key an address is suppressed under; input that does not parse is compared lower-cased as given. */
export function suppressionKey(email: string): string {
  const parsed = parseAddrSpec(email.trim());
  return (parsed.ok ? parsed.mailbox.address : email.trim()).toLowerCase();
}

/** Cursors are opaque: base64url of the last entry's microsecond time and key (the sort order). */
const encodeCursor = (r: Row) => Buffer.from(JSON.stringify([r.at, r.email_key])).toString("base64url");
function decodeCursor(cursor: string): [string, string] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    // Only what encodeCursor writes: a real UTC time to the microsecond and a key without control
    // characters (a crafted "2024-13-45T99:99:99" or a NUL reached PostgreSQL: a 500).
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string" && NO_CONTROL.test(v[1]) && isUtcTime(v[0]))
      return [v[0], v[1]];
  } catch {
    // fall through
  }
  throw new AppError("malformed_request", "invalid query parameters", [{ path: "cursor", message: "not a cursor from this API" }]);
}

/** `YYYY-MM-DDTHH:MM:SS[.ffffff]` naming a real instant (no 13th month, no 25th hour). */
function isUtcTime(s: string): boolean {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,6})?$/.exec(s);
  if (!m) return false;
  const t = new Date(`${m[1]}Z`);
  return !Number.isNaN(t.getTime()) && t.toISOString().slice(0, 19) === m[1];
}

/** Newest first; filtered by reason and/or one address; `next_cursor` when more follow. */
export async function listSuppressions(store: Store, accountId: string, q: ListSuppressionsQuery) {
  const after = q.cursor ? decodeCursor(q.cursor) : null;
  const rows = await store.rows<Row>(sql`
    select ${COLUMNS} from suppressions
    where account_id = ${accountId}
      ${q.reason ? sql`and reason = ${q.reason}` : sql``}
      ${q.email !== undefined ? sql`and email_key = ${suppressionKey(q.email)}` : sql``}
      ${after ? sql`and (created_at, email_key) < (${after[0]}::timestamp at time zone 'UTC', ${after[1]})` : sql``}
    order by created_at desc, email_key desc
    limit ${q.limit + 1}`);
  const page = rows.slice(0, q.limit);
  return { data: page.map(view), next_cursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!) : null };
}

/**
 * Adds the address by hand (or an import with its own reason). An address already on the list
 * keeps its entry, first reason and time: `created` is false and the existing entry is returned.
 */
export async function createSuppression(store: Store, accountId: string, input: CreateSuppressionInput): Promise<{ entry: SuppressionView; created: boolean }> {
  const parsed = parseAddrSpec(input.email);
  if (!parsed.ok) throw new AppError("validation_failed", "the request body has invalid fields", [{ path: "email", message: parsed.error }]);
  const email = parsed.mailbox.address;
  const key = email.toLowerCase();
  const inserted = await store.rows<Row>(sql`
    insert into suppressions (account_id, email_key, email, reason, detail, created_at)
    values (${accountId}, ${key}, ${email}, ${input.reason}, ${input.detail ?? null}, ${new Date().toISOString()}::timestamptz)
    on conflict (account_id, email_key) do nothing
    returning ${COLUMNS}`);
  if (inserted[0]) return { entry: view(inserted[0]), created: true };
  // The conflicting row committed before this statement began, or just after: read it now.
  const [existing] = await store.rows<Row>(sql`select ${COLUMNS} from suppressions where account_id = ${accountId} and email_key = ${key}`);
  if (!existing) throw new AppError("conflict", "the address was removed from the list concurrently; retry");
  return { entry: view(existing), created: false };
}

/** Removes the address from the account's list (future messages to it are sent again); 404 when it is not there. */
export async function deleteSuppression(store: Store, accountId: string, email: string): Promise<SuppressionView & { deleted: true }> {
  if (!NO_CONTROL.test(email)) throw notFound("suppression"); // no address holds one (and PostgreSQL text cannot hold NUL)
  const [row] = await store.rows<Row>(sql`
    delete from suppressions where account_id = ${accountId} and email_key = ${suppressionKey(email)} returning ${COLUMNS}`);
  if (!row) throw notFound("suppression");
  return { ...view(row), deleted: true };
}
