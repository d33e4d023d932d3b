/**
 * The two statements that store accepted messages (src/messages/insert.ts runs them): each is
 * ONE prepared statement whose data-modifying CTEs are atomic without BEGIN/COMMIT.
 *
 * Both decide submit-time suppression themselves (SPEC.md "Recipient states": `suppressed` = on
 * the suppression list at submit time): every recipient is looked up in `suppressions` by
 * (account_id, email_key) inside the statement, so the stored states, the message's summary,
 * the `email.suppressed` events (the webhook outbox) and the states returned to the caller all
 * come from the same snapshot — a suppression added concurrently is either seen by all of them
 * or by none — and the hot path costs no extra round trip. A suppressed recipient has no
 * next_attempt_at, so the queue never claims it.
 *
 * The `email.suppressed` event of a recipient takes its id from the recipient's (`evt_` + the
 * same 26 characters): a recipient is suppressed at submit time at most once, and deriving the
 * id saves an array parameter of pre-drawn ids on every insert.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.js";

const p = (name: string) => sql.placeholder(name);

/** One recipient's state as decided from the suppression list (`ri.suppressed`: the matching entry's reason, or null). */
const RECIPIENT_STATE = sql.raw(`case when ri.suppressed is null then 'queued' else 'suppressed' end`);

/** The recipients `ri` of the inserted messages `m`, each queued or suppressed; a suppressed one is never due. */
const INSERT_RECIPIENTS = sql`
    insert into recipients (id, message_id, account_id, email, email_key, domain, kind, status, next_attempt_at, created_at, updated_at)
    select ri.id, m.id, m.account_id, ri.email, ri.email_key, ri.domain, ri.kind, ${RECIPIENT_STATE},
      case when ri.suppressed is null then ri.next_at end, m.created_at, m.created_at
    from ri join m on m.id = ri.message_id
    returning id, message_id, status`;

/** The `email.suppressed` event body (SPEC.md "Webhooks"), from `ri` and the inserted message row `m`. */
const SUPPRESSED_EVENT = sql.raw(`
  insert into events (id, account_id, message_id, recipient_id, type, data, created_at)
  select 'evt_' || substr(ri.id, 6), m.account_id, m.id, ri.id, 'email.suppressed',
    jsonb_build_object('message', m.id, 'recipient', ri.id, 'email', ri.email, 'message_id', m.message_id, 'tags', m.tags,
      'suppression', jsonb_build_object('reason', ri.suppressed)),
    m.created_at
  from ri join m on m.id = ri.message_id
  where ri.suppressed is not null`);

/** What both statements return: one row per stored recipient with its state and its message's. */
export interface InsertedRow extends Record<string, unknown> {
  id: string;
  message: string;
  status: "queued" | "suppressed";
  message_status: "queued" | "suppressed";
}

/** Many messages and all their recipients; every column is one array parameter. */
export function prepareInsertMany(db: Db) {
  // Recipients with their suppression (if any); the message's account comes from the same arrays.
  const ri = db.$with("ri", {}).as(sql`
    select i.id, i.message_id, i.email, i.email_key, i.domain, i.kind, i.next_at, s.reason as suppressed
    from unnest(${p("rIds")}::text[], ${p("rMessageIds")}::text[], ${p("rEmails")}::text[], ${p("rEmailKeys")}::text[],
      ${p("rDomains")}::text[], ${p("rKinds")}::text[], ${p("rNextAt")}::timestamptz[])
      as i(id, message_id, email, email_key, domain, kind, next_at)
    join unnest(${p("ids")}::text[], ${p("accountIds")}::text[]) as mk(id, account_id) on mk.id = i.message_id
    left join suppressions s on s.account_id = mk.account_id and s.email_key = i.email_key`);
  // A message is `suppressed` when every recipient is (MESSAGE_SUMMARY_SQL's "the common state").
  const ms = db.$with("ms", {}).as(sql`
    select message_id, bool_and(suppressed is not null) as all_suppressed from ri group by message_id`);
  const m = db.$with("m", {}).as(sql`
    insert into messages (id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, status, scheduled_at, created_at)
    select i.id, i.account_id, i.message_id, i.mail_from, i.from_header, i.subject, i.addresses::jsonb, i.tags::jsonb,
      decode(i.raw, 'base64'), i.size, i.smtputf8, case when ms.all_suppressed then 'suppressed' else 'queued' end, i.scheduled_at, i.created_at
    from unnest(${p("ids")}::text[], ${p("accountIds")}::text[], ${p("messageIds")}::text[], ${p("mailFroms")}::text[],
      ${p("fromHeaders")}::text[], ${p("subjects")}::text[], ${p("addresses")}::text[], ${p("tags")}::text[], ${p("raws")}::text[],
      ${p("sizes")}::int[], ${p("smtputf8s")}::boolean[], ${p("scheduledAts")}::timestamptz[], ${p("createdAts")}::timestamptz[])
      as i(id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, scheduled_at, created_at)
    left join ms on ms.message_id = i.id
    returning id, account_id, message_id, tags, status, created_at`);
  const r = db.$with("r", {}).as(INSERT_RECIPIENTS);
  const e = db.$with("e", {}).as(SUPPRESSED_EVENT);
  return db
    .with(ri, ms, m, r, e)
    .select({ id: sql<string>`r.id`, message: sql<string>`r.message_id`, status: sql<string>`r.status`, message_status: sql<string>`m.status` })
    .from(sql`r join m on m.id = r.message_id`)
    .prepare("insert_messages");
}

/**
 * One message that also claims an Idempotency-Key: nothing is stored when the key is live. The
 * stored response gets its `status` and `recipients` from this statement's own decisions, so a
 * replay answers exactly what the first request did.
 */
export function prepareInsertClaimingKey(db: Db) {
  const ri = db.$with("ri", {}).as(sql`
    select i.id, i.email, i.email_key, i.domain, i.kind, i.next_at, i.ord, ${p("id")}::text as message_id, s.reason as suppressed
    from unnest(${p("rIds")}::text[], ${p("rEmails")}::text[], ${p("rEmailKeys")}::text[],
      ${p("rDomains")}::text[], ${p("rKinds")}::text[], ${p("rNextAt")}::timestamptz[]) with ordinality
      as i(id, email, email_key, domain, kind, next_at, ord)
    left join suppressions s on s.account_id = ${p("accountId")} and s.email_key = i.email_key`);
  const ms = db.$with("ms", {}).as(sql`
    select case when bool_and(suppressed is not null) then 'suppressed' else 'queued' end as status,
      jsonb_agg(jsonb_build_object('id', id, 'email', email, 'status', ${RECIPIENT_STATE}) order by ord) as recipients
    from ri`);
  const idem = db.$with("idem", {}).as(sql`
    insert into idempotency_keys (account_id, key, request_hash, status_code, response, created_at)
    select ${p("accountId")}, ${p("idemKey")}, ${p("idemHash")}, 202,
      ${p("idemResponse")}::jsonb || jsonb_build_object('status', ms.status, 'recipients', ms.recipients), ${p("created")}::timestamptz
    from ms
    on conflict (account_id, key) do update
      set request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at
      where idempotency_keys.created_at < ${p("idemExpiredBefore")}::timestamptz
    returning key`);
  const m = db.$with("m", {}).as(sql`
    insert into messages (id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, status, scheduled_at, created_at)
    select ${p("id")}, ${p("accountId")}, ${p("messageId")}, ${p("mailFrom")}, ${p("fromHeader")}, ${p("subject")}, ${p("addresses")}::jsonb,
      ${p("tags")}::jsonb, ${p("raw")}::bytea, ${p("size")}::int, ${p("smtputf8")}::boolean, ms.status,
      ${p("scheduledAt")}::timestamptz, ${p("created")}::timestamptz
    from ms where exists (select 1 from idem)
    returning id, account_id, message_id, tags, status, created_at`);
  const r = db.$with("r", {}).as(INSERT_RECIPIENTS);
  const e = db.$with("e", {}).as(SUPPRESSED_EVENT);
  return db
    .with(ri, ms, idem, m, r, e)
    .select({ id: sql<string>`r.id`, message: sql<string>`r.message_id`, status: sql<string>`r.status`, message_status: sql<string>`m.status` })
    .from(sql`r join m on m.id = r.message_id`)
    .prepare("insert_message_claiming_key");
}
