import { eq } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookDeliveries } from "../../src/db/schema.js";
import { createResolver } from "../../src/dns/resolver.js";
import { createLogger } from "../../src/lib/logger.js";
import { startDispatcher, type Dispatcher } from "../../src/webhooks/dispatcher.js";
import { createWebhook } from "../../src/webhooks/webhooks.js";
import { engineHarness, type EngineHarness } from "../helpers/engine.js";
import { startSmtpServer, type RunningSmtpServer } from "../helpers/smtp-servers.js";
import { startReceiver, until, type Receiver } from "../helpers/webhook-receiver.js";
import { secret } from "./harness.js";

let e: EngineHarness;
let mx: RunningSmtpServer;
let rx: Receiver;
let dispatcher: Dispatcher;
beforeAll(async () => {
  e = await engineHarness();
  mx = await startSmtpServer();
  rx = await startReceiver(() => ({ status: 200 }));
  e.publish({ "example.org": { MX: [{ preference: 10, exchange: "mx.example.org" }] }, "mx.example.org": { A: ["127.0.0.1"] } });
});
afterAll(async () => {
  await dispatcher?.stop(1_000);
  await e?.close();
  await mx?.close();
  await rx?.close();
});

describe("from SMTP delivery to webhook", () => {
  it("sends a signed email.delivered once the receiving server accepted the message", async () => {
    const wh = await createWebhook(e.store.db, secret, { accountId: e.accountId, url: `${rx.base}/postline`, events: ["email.delivered"], allowNetworks: ["127.0.0.0/8"] });
    // Default 1 s poll: the delivery worker's NOTIFY after recording the outcome is what wakes it.
    dispatcher = await startDispatcher({
      store: e.store,
      logger: createLogger("silent"),
      secret,
      http: { resolver: createResolver({ servers: [e.dns.address], timeoutMs: 500 }), allowNetworks: ["127.0.0.0/8"] },
      concurrency: 4,
      retry: { baseMs: 5, lifetimeMs: 60_000 },
      timeoutMs: 2_000,
    });
    await e.worker({ smtpPort: mx.port });
    const sent = await e.send({ to: "bob@example.org", tags: { campaign: "welcome" } });
    await e.settle(sent.id, ["delivered"]);
    expect(mx.received).toHaveLength(1);

    const [hook] = await until(() => rx.received.length > 0 && rx.received, "the webhook");
    const body = new Webhook(wh.secret).verify(hook!.body, hook!.headers as Record<string, string>) as any;
    expect(body).toMatchObject({
      type: "email.delivered",
      data: { message: sent.id, recipient: sent.recipients[0]!.id, email: "bob@example.org", tags: { campaign: "welcome" }, smtp: { code: 250 } },
    });
    expect(body.data.message_id).toMatch(/^<.+@example\.com>$/);
    expect(hook!.headers["webhook-id"]).toMatch(/^evt_/);
    const recorded = async () => (await e.store.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, wh.id)))[0];
    expect(await until(async () => (await recorded())?.status === "succeeded" && recorded(), "the delivery recorded")).toMatchObject({ attempts: 1, lastStatusCode: 200 });
  });
});
