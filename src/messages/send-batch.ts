/**
 * POST /messages/batch: up to 500 messages in one request, each validated and stored on its own
 * — one bad message does not fail the others — and answered in order. They are accepted
 * concurrently, so their inserts meet in the grouped statement of src/messages/insert.ts (a
 * batch costs a handful of round trips, not 500).
 */
import type { Store } from "../db/client.js";
import { AppError, type FieldError } from "../lib/errors.js";
import { sendMessageSchema } from "./schemas.js";
import { sendMessage, type SendOptions, type SendResult } from "./send.js";

export const BATCH_LIMIT = 500;

/** One message's outcome: its 202 answer, or why it was not accepted. */
export type BatchItem = { ok: true; result: SendResult } | { ok: false; error: AppError };

/**
 * Validates and sends every message (the POST /messages body each). `onUnexpected` hears of
 * errors that are bugs or outages, not the message's fault: that message answers 500, the
 * others are unaffected. Idempotency does not apply to batches (`opts.idempotency` is ignored).
 */
export async function sendBatch(
  store: Store,
  bodies: unknown[],
  opts: SendOptions,
  onUnexpected: (err: unknown, index: number) => void,
): Promise<BatchItem[]> {
  const now = opts.now ?? new Date();
  const one = { ...opts, idempotency: undefined, now };
  return Promise.all(
    bodies.map(async (body, index): Promise<BatchItem> => {
      const parsed = sendMessageSchema.safeParse(body);
      if (!parsed.success) {
        const errors: FieldError[] = parsed.error.issues.map((i) => ({ path: i.path.map(String).join("/") || "(root)", message: i.message }));
        return { ok: false, error: new AppError("validation_failed", "the message has invalid fields", errors) };
      }
      try {
        return { ok: true, result: (await sendMessage(store, parsed.data, one)).result };
      } catch (err) {
        if (err instanceof AppError) return { ok: false, error: err };
        onUnexpected(err, index);
        return { ok: false, error: new AppError("internal", "an unexpected error occurred; it has been logged") };
      }
    }),
  );
}
