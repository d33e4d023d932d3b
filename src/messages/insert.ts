/**
 * Stores accepted messages with their recipients, each message all-or-nothing, in ONE statement
 * per round trip: data-modifying CTEs are atomic without BEGIN/COMMIT.
 *
 * Messages without an Idempotency-Key are grouped (group commit): while MAX_IN_FLIGHT inserts
 * are running, newly accepted messages wait and then go together in one statement (unnest of
 * arrays). At low load every message goes alone at once; under load one round trip, one commit
 * and one WAL flush serve many requests. If a grouped statement fails for something a message
 * can cause (bad data, a constraint), each of its messages is retried alone, so a message fails
 * only for its own reason. A message with an Idempotency-Key
 * goes alone through a statement that also claims the key (nothing is stored when the key is live).
 *
 * Both statements are prepared queries with placeholders, built once per database: drizzle does
 * not rebuild SQL per request, and postgres.js keeps them as named statements per connection, so
 * an insert is one Bind/Execute round trip (an unprepared query with parameters costs a
 * Describe round trip first).
 *
 * Workers are woken by a NOTIFY sent after the rows have committed, coalesced (`wakeWorkers`):
 * PostgreSQL serialises the commits of all transactions that NOTIFY (one global lock held through
 * the WAL flush), so a pg_notify inside every insert would allow one commit at a time.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import type { Db, Store } from "../db/client.js";
import { QUEUE_CHANNEL } from "../lib/channels.js";
import { notifyCoalesced } from "../db/notify.js";

export interface MessageRow {
  id: string;
  accountId: string;
  messageId: string;
  mailFrom: string;
  fromHeader: string;
  subject: string;
  addresses: { to: string[]; cc: string[]; bcc: string[]; reply_to: string[] };
  tags: Record<string, string>;
  raw: Buffer;
  smtputf8: boolean;
  scheduledAt: Date | null;
  createdAt: Date;
}

export interface RecipientRow {
  id: string;
  email: string;
  emailKey: string;
  domain: string;
  kind: "to" | "cc" | "bcc";
  nextAttemptAt: Date;
}

export interface IdempotencyClaim {
  key: string;
  requestHash: string;
  response: unknown;
  /** Records older than this are expired and may be taken over. */
  expiredBefore: Date;
}

/** Grouped inserts running at once per store; the pool keeps connections for everything else. */
const MAX_IN_FLIGHT = 2;
/** Bounds of one grouped statement (a larger message still goes, alone). */
const MAX_GROUP_MESSAGES = 64;
const MAX_GROUP_RAW_BYTES = 1024 * 1024;

/**
 * Inserts the message and its recipients. With `idempotency`, also claims the key, and inserts
 * nothing when the key is live (returns false then); otherwise returns true.
 */
export async function insertMessage(store: Store, m: MessageRow, rcpts: RecipientRow[], idempotency?: IdempotencyClaim): Promise<boolean> {
  let stored = true;
  if (idempotency) stored = await insertClaimingKey(store.db, m, rcpts, idempotency);
  else await groupFor(store).add({ m, rcpts });
  if (stored && (!m.scheduledAt || m.scheduledAt <= m.createdAt)) wakeWorkers(store);
  return stored;
}

// ─── Grouped inserts ───

interface Pending {
  m: MessageRow;
  rcpts: RecipientRow[];
}
/** A queued message and how to settle its caller's promise (no argument: stored). */
type Waiting = Pending & { done: (err?: unknown) => void };

class InsertGroup {
  private queue: Waiting[] = [];
  private inFlight = 0;
  constructor(private readonly db: Db) {}

  add(p: Pending): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...p, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (this.inFlight < MAX_IN_FLIGHT) this.next();
    });
  }

  private next(): void {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && n < MAX_GROUP_MESSAGES && (n === 0 || bytes + this.queue[n]!.m.raw.length <= MAX_GROUP_RAW_BYTES))
      bytes += this.queue[n++]!.m.raw.length;
    if (n === 0) return;
    const group = this.queue.splice(0, n);
    this.inFlight++;
    void this.run(group).finally(() => {
      this.inFlight--;
      if (this.queue.length) this.next();
    });
  }

  private async run(group: Waiting[]): Promise<void> {
    try {
      await insertMany(this.db, group);
      for (const p of group) p.done();
    } catch (err) {
      if (group.length === 1 || !causedByOneMessage(err)) {
        for (const p of group) p.done(err ?? new Error("insert failed"));
        return;
      }
      // One bad message must not fail the others: each alone, with its own outcome.
      await Promise.all(group.map((p) => insertMany(this.db, [p]).then(() => p.done(), (e: unknown) => p.done(e ?? new Error("insert failed")))));
    }
  }
}

/**
 * True for errors a message's own content can cause — SQLSTATE classes 22 (data exception), 23
 * (integrity constraint violation) and 54 (program limit exceeded) — so retrying the group's
 * messages one by one isolates it. Connection and server errors fail the whole group at once.
 */
function causedByOneMessage(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code; // drizzle wraps the driver's error as `cause`
  return typeof code === "string" && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

const groups = new WeakMap<Store, InsertGroup>();
function groupFor(store: Store): InsertGroup {
  let g = groups.get(store);
  if (!g) groups.set(store, (g = new InsertGroup(store.db)));
  return g;
}

const p = (name: string) => sql.placeholder(name);

/** Many messages and all their recipients; every column is one array parameter. */
function prepareInsertMany(db: Db) {
  const m = db.$with("m", {}).as(sql`
    insert into messages (id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, status, scheduled_at, created_at)
    select i.id, i.account_id, i.message_id, i.mail_from, i.from_header, i.subject, i.addresses::jsonb, i.tags::jsonb,
      decode(i.raw, 'base64'), i.size, i.smtputf8, 'queued', i.scheduled_at, i.created_at
    from unnest(${p("ids")}::text[], ${p("accountIds")}::text[], ${p("messageIds")}::text[], ${p("mailFroms")}::text[],
      ${p("fromHeaders")}::text[], ${p("subjects")}::text[], ${p("addresses")}::text[], ${p("tags")}::text[], ${p("raws")}::text[],
      ${p("sizes")}::int[], ${p("smtputf8s")}::boolean[], ${p("scheduledAts")}::timestamptz[], ${p("createdAts")}::timestamptz[])
      as i(id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, scheduled_at, created_at)
    returning id, account_id, created_at`);
  const r = db.$with("r", {}).as(sql`
    insert into recipients (id, message_id, account_id, email, email_key, domain, kind, status, next_attempt_at, created_at, updated_at)
    select i.id, m.id, m.account_id, i.email, i.email_key, i.domain, i.kind, 'queued', i.next_at, m.created_at, m.created_at
    from unnest(${p("rIds")}::text[], ${p("rMessageIds")}::text[], ${p("rEmails")}::text[], ${p("rEmailKeys")}::text[],
      ${p("rDomains")}::text[], ${p("rKinds")}::text[], ${p("rNextAt")}::timestamptz[])
      as i(id, message_id, email, email_key, domain, kind, next_at)
    join m on m.id = i.message_id
    returning 1`);
  return db
    .with(m, r)
    .select({ n: sql<number>`count(*)::int` })
    .from(sql`m`)
    .prepare("insert_messages");
}

const manyStatements = new WeakMap<Db, ReturnType<typeof prepareInsertMany>>();

async function insertMany(db: Db, group: Pending[]): Promise<void> {
  let q = manyStatements.get(db);
  if (!q) manyStatements.set(db, (q = prepareInsertMany(db)));
  const col = <T>(f: (m: MessageRow) => T) => pgArray(group.map((p) => f(p.m)) as (string | number | boolean | null)[]);
  const rs = group.flatMap((p) => p.rcpts.map((r) => ({ r, messageId: p.m.id })));
  const rcol = (f: (x: (typeof rs)[number]) => string) => pgArray(rs.map(f));
  const [row] = await q.execute({
    ids: col((m) => m.id),
    accountIds: col((m) => m.accountId),
    messageIds: col((m) => m.messageId),
    mailFroms: col((m) => m.mailFrom),
    fromHeaders: col((m) => m.fromHeader),
    subjects: col((m) => m.subject),
    addresses: col((m) => JSON.stringify(m.addresses)),
    tags: col((m) => JSON.stringify(m.tags)),
    raws: col((m) => m.raw.toString("base64")),
    sizes: col((m) => m.raw.length),
    smtputf8s: col((m) => m.smtputf8),
    scheduledAts: col((m) => m.scheduledAt?.toISOString() ?? null),
    createdAts: col((m) => m.createdAt.toISOString()),
    rIds: rcol((x) => x.r.id),
    rMessageIds: rcol((x) => x.messageId),
    rEmails: rcol((x) => x.r.email),
    rEmailKeys: rcol((x) => x.r.emailKey),
    rDomains: rcol((x) => x.r.domain),
    rKinds: rcol((x) => x.r.kind),
    rNextAt: rcol((x) => x.r.nextAttemptAt.toISOString()),
  });
  if (row?.n !== group.length) throw new Error(`inserted ${row?.n ?? 0} of ${group.length} messages`);
}

// ─── One message that claims an Idempotency-Key ───

function prepareInsertClaimingKey(db: Db) {
  const idem = db.$with("idem", {}).as(sql`
    insert into idempotency_keys (account_id, key, request_hash, status_code, response, created_at)
    values (${p("accountId")}, ${p("idemKey")}, ${p("idemHash")}, 202, ${p("idemResponse")}::jsonb, ${p("created")}::timestamptz)
    on conflict (account_id, key) do update
      set request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at
      where idempotency_keys.created_at < ${p("idemExpiredBefore")}::timestamptz
    returning key`);
  const m = db.$with("m", {}).as(sql`
    insert into messages (id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, status, scheduled_at, created_at)
    select ${p("id")}, ${p("accountId")}, ${p("messageId")}, ${p("mailFrom")}, ${p("fromHeader")}, ${p("subject")}, ${p("addresses")}::jsonb,
      ${p("tags")}::jsonb, ${p("raw")}::bytea, ${p("size")}::int, ${p("smtputf8")}::boolean, 'queued',
      ${p("scheduledAt")}::timestamptz, ${p("created")}::timestamptz
    where exists (select 1 from idem)
    returning id`);
  const r = db.$with("r", {}).as(sql`
    insert into recipients (id, message_id, account_id, email, email_key, domain, kind, status, next_attempt_at, created_at, updated_at)
    select i.id, m.id, ${p("accountId")}, i.email, i.email_key, i.domain, i.kind, 'queued', i.next_at, ${p("created")}::timestamptz, ${p("created")}::timestamptz
    from m, unnest(${p("rIds")}::text[], ${p("rEmails")}::text[], ${p("rEmailKeys")}::text[],
      ${p("rDomains")}::text[], ${p("rKinds")}::text[], ${p("rNextAt")}::timestamptz[])
      as i(id, email, email_key, domain, kind, next_at)
    returning 1`);
  return db.with(idem, m, r).select({ id: sql<string>`m.id` }).from(sql`m`).prepare("insert_message_claiming_key");
}

const claimingStatements = new WeakMap<Db, ReturnType<typeof prepareInsertClaimingKey>>();

async function insertClaimingKey(db: Db, m: MessageRow, rcpts: RecipientRow[], idempotency: IdempotencyClaim): Promise<boolean> {
  let q = claimingStatements.get(db);
  if (!q) claimingStatements.set(db, (q = prepareInsertClaimingKey(db)));
  const created = m.createdAt.toISOString();
  const col = (f: (r: RecipientRow) => string) => pgArray(rcpts.map(f));
  const rows = await q.execute({
    id: m.id,
    accountId: m.accountId,
    messageId: m.messageId,
    mailFrom: m.mailFrom,
    fromHeader: m.fromHeader,
    subject: m.subject,
    addresses: JSON.stringify(m.addresses),
    tags: JSON.stringify(m.tags),
    raw: m.raw,
    size: m.raw.length,
    smtputf8: m.smtputf8,
    scheduledAt: m.scheduledAt?.toISOString() ?? null,
    created,
    rIds: col((r) => r.id),
    rEmails: col((r) => r.email),
    rEmailKeys: col((r) => r.emailKey),
    rDomains: col((r) => r.domain),
    rKinds: col((r) => r.kind),
    rNextAt: col((r) => r.nextAttemptAt.toISOString()),
    idemKey: idempotency.key,
    idemHash: idempotency.requestHash,
    idemResponse: JSON.stringify(idempotency.response),
    idemExpiredBefore: idempotency.expiredBefore.toISOString(),
  });
  return rows.length === 1;
}

// ─── Waking the delivery workers ───

/** NOTIFYs QUEUE_CHANNEL after rows committed by the caller, coalesced (src/db/notify.ts). */
export function wakeWorkers(store: Store): void {
  notifyCoalesced(store, QUEUE_CHANNEL);
}
