/**
 * What the dispatcher tests share: a migrated store, a service secret, an account, webhooks
 * created through the service, events inserted as the engine writes them (the fan-out trigger
 * makes the deliveries), and dispatchers started with test timings.
 */
import { randomBytes } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import type { Store } from "../../src/db/client.js";
import { events, webhookAttempts, webhookDeliveries, webhooks } from "../../src/db/schema.js";
import { createResolver } from "../../src/dns/resolver.js";
import { newId } from "../../src/lib/ids.js";
import { createLogger } from "../../src/lib/logger.js";
import { secretFromString } from "../../src/lib/secret.js";
import { startDispatcher, type Dispatcher, type DispatcherOptions } from "../../src/webhooks/dispatcher.js";
import type { WebhookEventType } from "../../src/webhooks/events.js";
import { createWebhook } from "../../src/webhooks/webhooks.js";
import { testStore } from "../helpers/store.js";

export const secret = secretFromString(randomBytes(32).toString("base64url"));

export async function webhookHarness() {
  const store: Store = await testStore();
  const accountId = (await createAccount(store.db, "webhooks")).id;
  const running: Dispatcher[] = [];
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
  return {
    store,
    accountId,
    /** An endpoint of the test account (URL rules checked with 127.0.0.0/8 allowed). */
    webhook: (url: string, types: WebhookEventType[] = ["email.delivered"]) =>
      createWebhook(store.db, secret, { accountId, url, events: types, allowNetworks: ["127.0.0.0/8"] }),
    /** Inserts an event row as the engine does; returns its id. */
    async emit(type: WebhookEventType = "email.delivered", data: Record<string, unknown> = { email: "bob@example.org" }, createdAt = new Date()) {
      const id = newId("event");
      await store.db.insert(events).values({ id, accountId, messageId: newId("message"), recipientId: null, type, data, createdAt });
      return id;
    },
    /** A dispatcher with test timings; `allowNetworks` is its DELIVERY_ALLOW_NETWORKS. */
    async dispatcher(o: Partial<DispatcherOptions> = {}, allowNetworks = ["127.0.0.0/8"]) {
      const d = await startDispatcher({
        store,
        logger,
        secret,
        http: { resolver: createResolver({ servers: ["127.0.0.1:1"], timeoutMs: 200, tries: 1 }), allowNetworks },
        concurrency: 4,
        retry: { baseMs: 5, lifetimeMs: 3_600_000 },
        timeoutMs: 2_000,
        ...o,
      });
      running.push(d);
      return d;
    },
    deliveries: (webhookId: string) => store.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhookId)).orderBy(asc(webhookDeliveries.seq)),
    tries: (seq: number) => store.db.select().from(webhookAttempts).where(eq(webhookAttempts.deliverySeq, seq)).orderBy(asc(webhookAttempts.id)),
    /** Stops the dispatchers and removes every endpoint (their deliveries cascade), so the next test starts clean. */
    async reset() {
      await Promise.all(running.splice(0).map((d) => d.stop(3_000)));
      await store.db.delete(webhooks);
    },
    async close() {
      await this.reset();
      await store.close();
    },
  };
}
