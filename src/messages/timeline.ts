/** GET /messages/{id}/events: the message's events and attempts, oldest first. */
import { and, asc, eq } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { attempts, events, messages } from "../db/schema.js";
import { notFound } from "../lib/errors.js";

export interface TimelineEntry {
  type: string;
  created_at: string;
  recipient: string | null;
  data: Record<string, unknown>;
}

export async function messageTimeline(db: Db, accountId: string, id: string): Promise<TimelineEntry[]> {
  const [m] = await db
    .select({ id: messages.id, createdAt: messages.createdAt })
    .from(messages)
    .where(and(eq(messages.id, id), eq(messages.accountId, accountId)));
  if (!m) throw notFound("message");
  const [ev, at] = await Promise.all([
    db.select().from(events).where(and(eq(events.messageId, id), eq(events.accountId, accountId))).orderBy(asc(events.seq)),
    db.select().from(attempts).where(and(eq(attempts.messageId, id), eq(attempts.accountId, accountId))).orderBy(asc(attempts.startedAt)),
  ]);
  const entries: TimelineEntry[] = [
    { type: "email.accepted", created_at: m.createdAt.toISOString(), recipient: null, data: {} },
    ...at.map((a) => ({
      type: "attempt",
      created_at: a.startedAt.toISOString(),
      recipient: a.recipientId,
      data: {
        id: a.id,
        outcome: a.outcome,
        mx: a.mx,
        ip: a.ip,
        tls: a.tlsVersion ? { version: a.tlsVersion, cipher: a.tlsCipher } : null,
        smtp: { code: a.code, enhanced: a.enhanced, text: a.text },
        duration_ms: a.durationMs,
      },
    })),
    ...ev.map((e) => ({ type: e.type, created_at: e.createdAt.toISOString(), recipient: e.recipientId, data: { id: e.id, ...e.data } })),
  ];
  // Stable: attempts before the event they caused when the times tie.
  return entries.sort((a, b) => a.created_at.localeCompare(b.created_at));
}
