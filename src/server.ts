/**
 * Starts Postline in this process: open and migrate the store, make sure an admin key exists,
 * and run the roles. main.ts wraps it with config loading and signals; tests and benchmarks
 * call it directly.
 */
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { ensureAdminKey } from "./accounts/accounts.js";
import type { Config } from "./config.js";
import { openStore, type Store } from "./db/client.js";
import { startWorker, type Worker } from "./delivery/worker.js";
import { startInboundListener, type InboundListener } from "./inbound/listener.js";
import { startDispatcher, type Dispatcher } from "./webhooks/dispatcher.js";
import { createResolver } from "./dns/resolver.js";
import { serviceSecret } from "./lib/secret.js";
import { buildApp } from "./http/app.js";
import type { SmtpTimeouts } from "./smtp/connection.js";
import type { Logger } from "./lib/logger.js";

export interface Running {
  store: Store;
  /** The HTTP port actually bound (PORT=0 picks a free one). */
  port: number | null;
  /** The admin key generated on this start, when one was (printed once by main.ts). */
  generatedAdminKey: string | null;
  worker: Worker | null;
  /** The inbound bounce/feedback SMTP port actually bound (INBOUND_SMTP_PORT=0 → off, null). */
  inboundPort: number | null;
  stop(): Promise<void>;
}

export interface StartOverrides {
  /** SMTP timeouts (tests use short ones). */
  timeouts?: Partial<SmtpTimeouts>;
  /** Bind the inbound listener here instead of INBOUND_SMTP_PORT (tests pass 0 for a free port). */
  inboundPort?: number;
}

export async function start(config: Config, logger: Logger, overrides: StartOverrides = {}): Promise<Running> {
  // The service secret (SECRET_KEY or DATA_DIR/secret.key) is loaded first: an unwritable
  // DATA_DIR stops the process here, not on the first POST /domains.
  const secret = await serviceSecret(config);
  const store = await openStore({ url: config.DATABASE_URL, dataDir: config.DATA_DIR });
  await store.migrate();
  const generatedAdminKey = await ensureAdminKey(store, config.ADMIN_API_KEY);
  logger.info({ database: store.kind, role: config.ROLE }, "store ready");

  let server: ServerType | null = null;
  let port: number | null = null;
  if (config.ROLE === "api" || config.ROLE === "all") {
    const app = buildApp({ store, config, logger });
    server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
      s.once("error", reject);
    });
    port = (server.address() as AddressInfo).port;
    logger.info({ host: config.HOST, port }, "http listening");
  }
  let worker: Worker | null = null;
  if (config.ROLE === "worker" || config.ROLE === "all") {
    worker = await startWorker({
      store,
      logger,
      deliver: {
        resolver: createResolver({ servers: config.DNS_SERVERS }),
        allowNetworks: config.DELIVERY_ALLOW_NETWORKS,
        smtpPort: config.SMTP_PORT,
        heloName: config.HELO_NAME,
        relay: config.relay,
        timeouts: overrides.timeouts,
      },
      retry: { schedule: config.RETRY_SCHEDULE, lifetimeMs: config.MAX_QUEUE_LIFETIME },
      domainConcurrency: config.DOMAIN_CONCURRENCY,
      maxConnections: config.MAX_CONNECTIONS,
      leaseMs: config.DELIVERY_LEASE,
      verp: config.RETURN_PATH_DOMAIN ? { key: secret.key("verp"), domain: config.RETURN_PATH_DOMAIN } : undefined,
    });
  }
  // Webhooks: the dispatcher runs wherever the delivery worker does.
  let dispatcher: Dispatcher | null = null;
  if (config.ROLE === "worker" || config.ROLE === "all") {
    dispatcher = await startDispatcher({
      store,
      logger,
      secret,
      http: { resolver: createResolver({ servers: config.DNS_SERVERS }), allowNetworks: config.DELIVERY_ALLOW_NETWORKS },
      concurrency: config.WEBHOOK_CONCURRENCY,
      retry: { baseMs: config.WEBHOOK_RETRY_BASE, lifetimeMs: config.WEBHOOK_RETRY_LIFETIME },
      timeoutMs: config.WEBHOOK_TIMEOUT,
    });
  }

  // Bounces and feedback reports in: where the worker runs, when there is a return-path domain.
  let inbound: InboundListener | null = null;
  if ((config.ROLE === "worker" || config.ROLE === "all") && config.RETURN_PATH_DOMAIN && (overrides.inboundPort !== undefined || config.INBOUND_SMTP_PORT !== 0)) {
    inbound = await startInboundListener({
      store,
      logger,
      host: config.INBOUND_SMTP_HOST,
      port: overrides.inboundPort ?? config.INBOUND_SMTP_PORT,
      domain: config.RETURN_PATH_DOMAIN,
      key: secret.key("verp"),
      maxBytes: config.INBOUND_MAX_BYTES,
      name: config.HELO_NAME,
    });
  }

  return {
    store,
    port,
    inboundPort: inbound?.port ?? null,
    generatedAdminKey,
    worker,
    stop: async () => {
      // Stop taking HTTP requests and claiming work; finish or release what is in flight.
      await worker?.stop();
      await inbound?.close();
      await dispatcher?.stop();
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await store.close();
    },
  };
}
