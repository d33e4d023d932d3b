/**
 * The whole loop on loopback for the inbound tests: the real delivery engine (with VERP on
 * RETURN_PATH) delivering to a real SMTP server that records the envelope sender, and the
 * real inbound listener on port 0 over the same store.
 */
import { randomBytes } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import { events, inboundMessages, messages, recipients, suppressions } from "../../src/db/schema.js";
import { startInboundListener, type InboundListener } from "../../src/inbound/listener.js";
import { createLogger } from "../../src/lib/logger.js";
import { sendMessage } from "../../src/messages/send.js";
import type { SendMessageInput } from "../../src/messages/schemas.js";
import { engineHarness, type EngineHarness } from "../helpers/engine.js";
import { startMailServer, type MailServer } from "../helpers/mail-server.js";
import { returnedHeaders } from "./samples.js";
import { smtpSend, type SendOptions } from "./smtp-client.js";

export const RETURN_PATH = "bounces.postline.test";
export const DEST = "dest.example";

export interface Delivered {
  id: string;
  accountId: string;
  messageIdHeader: string;
  recipients: { id: string; email: string }[];
  /** The MAIL FROM the receiving server saw: the VERP address. */
  verp: string;
  /** The returned message's headers, as a DSN would quote them. */
  returned: string;
}

export interface InboundHarness {
  h: EngineHarness;
  key: Buffer;
  listener: InboundListener;
  mx: MailServer;
  /** A second account on the same store. */
  otherAccountId: string;
  deliver(to: string[], accountId?: string): Promise<Delivered>;
  report(rcpt: string, data: Buffer | string, extra?: Partial<SendOptions>): ReturnType<typeof smtpSend>;
  recipient(id: string): Promise<typeof recipients.$inferSelect>;
  events(messageId: string): Promise<(typeof events.$inferSelect)[]>;
  suppressions(accountId: string): Promise<(typeof suppressions.$inferSelect)[]>;
  inbound(): Promise<(typeof inboundMessages.$inferSelect)[]>;
  close(): Promise<void>;
}

export async function inboundHarness(opts: { maxBytes?: number } = {}): Promise<InboundHarness> {
  const h = await engineHarness();
  const key = randomBytes(32);
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
  const mx = await startMailServer();
  h.publish({ [DEST]: { MX: [{ preference: 10, exchange: `mx.${DEST}` }] }, [`mx.${DEST}`]: { A: ["127.0.0.1"] } });
  await h.worker({ smtpPort: mx.port, verp: { key, domain: RETURN_PATH } });
  const listener = await startInboundListener({
    store: h.store, logger, host: "127.0.0.1", port: 0, domain: RETURN_PATH, key,
    maxBytes: opts.maxBytes ?? 10 * 1024 * 1024, name: "inbound.postline.test", socketTimeoutMs: 10_000, closeTimeoutMs: 500,
  });
  const otherAccountId = (await createAccount(h.store.db, "other")).id;

  return {
    h, key, listener, mx, otherAccountId,
    async deliver(to, accountId = h.accountId) {
      const { result } = await sendMessage(
        h.store,
        { from: "Sender <sender@example.com>", to, subject: "Test", text: "Hello", tags: { campaign: "inbound" } } as SendMessageInput,
        { accountId, maxMessageBytes: 20 * 1024 * 1024 },
      );
      await h.settle(result.id, ["delivered"]);
      const got = mx.received.find((r) => r.to.includes(to[0]!));
      if (!got) throw new Error(`nothing received for ${to[0]}`);
      const [m] = await h.store.db.select().from(messages).where(eq(messages.id, result.id));
      return {
        id: result.id, accountId, messageIdHeader: m!.messageId, recipients: result.recipients, verp: got.from,
        returned: returnedHeaders({ from: got.from, to, messageId: m!.messageId }),
      };
    },
    report: (rcpt, data, extra = {}) => smtpSend(listener.port, { mailFrom: "", rcptTo: [rcpt], data, ...extra }),
    recipient: async (id) => (await h.store.db.select().from(recipients).where(eq(recipients.id, id)))[0]!,
    events: (messageId) => h.store.db.select().from(events).where(eq(events.messageId, messageId)).orderBy(events.seq),
    suppressions: (accountId) => h.store.db.select().from(suppressions).where(and(eq(suppressions.accountId, accountId))),
    inbound: () => h.store.db.select().from(inboundMessages).orderBy(inboundMessages.id),
    async close() {
      await listener.close();
      await h.close();
      await mx.close();
    },
  };
}
