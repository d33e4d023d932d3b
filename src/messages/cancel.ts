/** POST /messages/{id}/cancel: a scheduled message is cancelled whole, or not at all. */
import { and, eq } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { events, messages, recipients } from "../db/schema.js";
import { AppError, notFound } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import { canTransition, type RecipientStatus } from "./status.js";

/** Cancels every recipient of a message that is still scheduled (queued, due in the future). */
export async function cancelMessage(db: Db, accountId: string, id: string, now = new Date()): Promise<void> {
  await db.transaction(async (tx) => {
    const [m] = await tx
      .select({ id: messages.id, scheduledAt: messages.scheduledAt, messageId: messages.messageId, tags: messages.tags })
      .from(messages)
      .where(and(eq(messages.id, id), eq(messages.accountId, accountId)))
      .for("update");
    if (!m) throw notFound("message");
    const rows = await tx
      .select({ id: recipients.id, email: recipients.email, status: recipients.status })
      .from(recipients)
      .where(and(eq(recipients.messageId, id), eq(recipients.accountId, accountId)))
      .for("update");
    const scheduled = m.scheduledAt !== null && m.scheduledAt > now;
    // Recipients suppressed at submit time were never going to be sent: they stay as they are.
    const waiting = rows.filter((r) => r.status !== "suppressed");
    if (!scheduled || !waiting.length || waiting.some((r) => !canTransition(r.status as RecipientStatus, "cancelled") || r.status !== "queued"))
      throw new AppError("conflict", "only a scheduled message whose recipients are all still waiting can be cancelled");
    await tx
      .update(recipients)
      .set({ status: "cancelled", nextAttemptAt: null, updatedAt: now })
      .where(and(eq(recipients.messageId, id), eq(recipients.status, "queued")));
    await tx.insert(events).values(
      waiting.map((r) => ({
        id: newId("event", now.getTime()),
        accountId,
        messageId: id,
        recipientId: r.id,
        type: "email.cancelled",
        data: { message: id, recipient: r.id, email: r.email, message_id: m.messageId, tags: m.tags },
        createdAt: now,
      })),
    );
    await tx.update(messages).set({ status: "cancelled" }).where(eq(messages.id, id));
  });
}
