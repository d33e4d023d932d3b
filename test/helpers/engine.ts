/**
 * Everything a delivery test needs, real and on loopback: a migrated store, an account, a DNS
 * responder (the only resolver the engine asks), and workers started with test timings.
 */
import { eq } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import type { Store } from "../../src/db/client.js";
import { recipients } from "../../src/db/schema.js";
import { startWorker, type Worker, type WorkerOptions } from "../../src/delivery/worker.js";
import { createResolver } from "../../src/dns/resolver.js";
import { createLogger } from "../../src/lib/logger.js";
import { sendMessage } from "../../src/messages/send.js";
import type { SendMessageInput } from "../../src/messages/schemas.js";
import { startDnsServer, type DnsServer, type Zone } from "./dns-server.js";
import { testStore } from "./store.js";

export interface EngineHarness {
  store: Store;
  accountId: string;
  dns: DnsServer;
  zone: Zone;
  /** Adds names to the DNS zone. */
  publish(entries: Zone): void;
  worker(overrides?: Partial<Omit<WorkerOptions, "deliver">> & { deliver?: Partial<WorkerOptions["deliver"]>; smtpPort?: number }): Promise<Worker>;
  send(input: Partial<SendMessageInput> & { to: string | string[] }): Promise<{ id: string; recipients: { id: string; email: string }[] }>;
  /** Polls until every recipient of the message is in one of `states` (bounded). */
  settle(messageId: string, states?: string[], ms?: number): Promise<(typeof recipients.$inferSelect)[]>;
  close(): Promise<void>;
}

export const TEST_TIMEOUTS = { connect: 1_000, greeting: 1_500, ehlo: 1_500, starttls: 1_500, mail: 1_500, rcpt: 1_500, dataInit: 1_500, dataBlock: 1_500, dataDone: 1_500, rset: 500, quit: 500 };

export async function engineHarness(): Promise<EngineHarness> {
  const store = await testStore();
  const accountId = (await createAccount(store.db, "engine")).id;
  const zone: Zone = {};
  const dns = await startDnsServer(zone);
  const workers: Worker[] = [];
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
  return {
    store,
    accountId,
    dns,
    zone,
    publish(entries) {
      Object.assign(zone, entries);
      dns.setZone(zone);
    },
    async worker(o = {}) {
      const w = await startWorker({
        store,
        logger,
        retry: { schedule: [300], lifetimeMs: 60_000 },
        domainConcurrency: 10,
        maxConnections: 50,
        leaseMs: 5_000,
        pollMs: 200,
        ...o,
        deliver: {
          resolver: createResolver({ servers: [dns.address], timeoutMs: 500 }),
          allowNetworks: ["127.0.0.0/8"],
          smtpPort: o.smtpPort ?? 25,
          heloName: "postline.test",
          timeouts: TEST_TIMEOUTS,
          ...o.deliver,
        },
      });
      workers.push(w);
      return w;
    },
    async send(input) {
      const { result } = await sendMessage(
        store,
        { from: "Sender <sender@example.com>", subject: "Test", text: "Hello\r\n.leading dot line\r\n", ...input } as SendMessageInput,
        { accountId, maxMessageBytes: 20 * 1024 * 1024 },
      );
      return result;
    },
    async settle(messageId, states = ["delivered", "bounced", "failed"], ms = 15_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const rows = await store.db.select().from(recipients).where(eq(recipients.messageId, messageId));
        if (rows.length && rows.every((r) => states.includes(r.status))) return rows;
        if (Date.now() > deadline) throw new Error(`recipients did not settle in ${ms} ms: ${rows.map((r) => `${r.email}=${r.status}(${r.lastCode ?? ""} ${r.lastText ?? ""})`).join(", ")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop(1_000)));
      await dns.close();
      await store.close();
    },
  };
}

/** The same real store, counting the statements run through it (`rows`): for tests about polling. */
export function countingStore(store: Store): { store: Store; readonly statements: number } {
  let statements = 0;
  const counted = new Proxy(store, {
    get: (target, key, receiver) => (key === "rows" ? (...a: Parameters<Store["rows"]>) => (statements++, target.rows(...a)) : Reflect.get(target, key, receiver)),
  });
  return {
    store: counted,
    get statements() {
      return statements;
    },
  };
}
