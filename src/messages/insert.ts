/**
 * Stores accepted messages with their recipients, each message all-or-nothing, in ONE statement
 * per round trip (src/messages/insert-sql.ts). Each recipient on the account's suppression list
 * is stored `suppressed` by that same statement, with its `email.suppressed` event; the states
 * the statement decided are what the caller gets back.
 *
 * Messages without an Idempotency-Key are grouped (group commit): while MAX_IN_FLIGHT inserts
 * are running, newly accepted messages wait and then go together in one statement (unnest of
 * arrays), as do those accepted in the same turn of the event loop. At low load every message
 * goes alone, at the end of its turn; under load one round trip, one commit and one WAL flush
 * serve many requests. If a grouped statement fails for something a message
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
 * the WAL flush), so a pg_notify inside every insert would allow one commit at a time. A message
 * whose recipients are all suppressed wakes no worker, only the webhook dispatchers.
 */
import { pgArray } from "../db/arrays.js";
import type { Db, Store } from "../db/client.js";
import { QUEUE_CHANNEL, WEBHOOK_CHANNEL } from "../lib/channels.js";
import { notifyCoalesced } from "../db/notify.js";
import { prepareInsertClaimingKey, prepareInsertMany, type InsertedRow } from "./insert-sql.js";

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

/** What the statement stored: the message's state and each recipient's, by recipient id. */
export interface Inserted {
  status: "queued" | "suppressed";
  recipients: Map<string, "queued" | "suppressed">;
}

/**
 * Inserts the message and its recipients; returns the states stored. With `idempotency`, also
 * claims the key, and inserts nothing when the key is live (returns null then).
 */
export async function insertMessage(store: Store, m: MessageRow, rcpts: RecipientRow[], idempotency?: IdempotencyClaim): Promise<Inserted | null> {
  const inserted = idempotency ? await insertClaimingKey(store.db, m, rcpts, idempotency) : await groupFor(store).add({ m, rcpts });
  if (!inserted) return null;
  if (inserted.status !== "suppressed" && (!m.scheduledAt || m.scheduledAt <= m.createdAt)) wakeWorkers(store);
  // email.suppressed events were written: the webhook outbox has rows to deliver.
  if ([...inserted.recipients.values()].includes("suppressed")) notifyCoalesced(store, WEBHOOK_CHANNEL);
  return inserted;
}

// ─── Grouped inserts ───

interface Pending {
  m: MessageRow;
  rcpts: RecipientRow[];
}
/** A queued message and how to settle its caller's promise (a result: stored; an error: not). */
type Waiting = Pending & { done: (result: Inserted | undefined, err?: unknown) => void };

class InsertGroup {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false; // a setImmediate will start the next statement
  constructor(private readonly db: Db) {}

  add(p: Pending): Promise<Inserted> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...p, done: (result, err) => (result ? resolve(result) : reject(err ?? new Error("insert failed"))) });
      // Sent at the end of this turn of the event loop, not at once: the requests Node parsed in
      // the same turn then share one statement (bench:api: ~20 messages per statement instead
      // of ~14 with a free slot taken by the first message of a burst alone).
      if (this.inFlight < MAX_IN_FLIGHT && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          if (this.inFlight < MAX_IN_FLIGHT) this.next();
        });
      }
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
      const stored = await insertMany(this.db, group);
      for (const p of group) p.done(stored.get(p.m.id));
    } catch (err) {
      if (group.length === 1 || !causedByOneMessage(err)) {
        for (const p of group) p.done(undefined, err);
        return;
      }
      // One bad message must not fail the others: each alone, with its own outcome.
      await Promise.all(group.map((p) => insertMany(this.db, [p]).then((one) => p.done(one.get(p.m.id)), (e: unknown) => p.done(undefined, e))));
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

const manyStatements = new WeakMap<Db, ReturnType<typeof prepareInsertMany>>();

async function insertMany(db: Db, group: Pending[]): Promise<Map<string, Inserted>> {
  let q = manyStatements.get(db);
  if (!q) manyStatements.set(db, (q = prepareInsertMany(db)));
  const col = <T>(f: (m: MessageRow) => T) => pgArray(group.map((p) => f(p.m)) as (string | number | boolean | null)[]);
  const rs = group.flatMap((p) => p.rcpts.map((r) => ({ r, messageId: p.m.id })));
  const rcol = (f: (x: (typeof rs)[number]) => string) => pgArray(rs.map(f));
  const rows = (await q.execute({
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
  })) as InsertedRow[];
  const byMessage = collect(rows);
  if (byMessage.size !== group.length || rows.length !== rs.length)
    throw new Error(`inserted ${byMessage.size} of ${group.length} messages (${rows.length} of ${rs.length} recipients)`);
  return byMessage;
}

/** Groups the statement's rows per message. */
function collect(rows: InsertedRow[]): Map<string, Inserted> {
  const out = new Map<string, Inserted>();
  for (const row of rows) {
    let m = out.get(row.message);
    if (!m) out.set(row.message, (m = { status: row.message_status, recipients: new Map() }));
    m.recipients.set(row.id, row.status);
  }
  return out;
}

// ─── One message that claims an Idempotency-Key ───

const claimingStatements = new WeakMap<Db, ReturnType<typeof prepareInsertClaimingKey>>();

async function insertClaimingKey(db: Db, m: MessageRow, rcpts: RecipientRow[], idempotency: IdempotencyClaim): Promise<Inserted | null> {
  let q = claimingStatements.get(db);
  if (!q) claimingStatements.set(db, (q = prepareInsertClaimingKey(db)));
  const created = m.createdAt.toISOString();
  const col = (f: (r: RecipientRow) => string) => pgArray(rcpts.map(f));
  const rows = (await q.execute({
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
  })) as InsertedRow[];
  if (rows.length && rows.length !== rcpts.length) throw new Error(`inserted ${rows.length} of ${rcpts.length} recipients`);
  return collect(rows).get(m.id) ?? null;
}

// ─── Waking the delivery workers ───

/** NOTIFYs QUEUE_CHANNEL after rows committed by the caller, coalesced (src/db/notify.ts). */
export function wakeWorkers(store: Store): void {
  notifyCoalesced(store, QUEUE_CHANNEL);
}
