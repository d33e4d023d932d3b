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
import { assertSecretOpensKeys } from "./domains/signing.js";
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
  const parts: { server: ServerType | null; worker: Worker | null; inbound: InboundListener | null; dispatcher: Dispatcher | null } = {
    server: null,
    worker: null,
    inbound: null,
    dispatcher: null,
  };
  const stop = async () => {
    // Stop taking HTTP requests and claiming work; finish or release what is in flight.
    await parts.worker?.stop();
    await parts.inbound?.close();
    await parts.dispatcher?.stop();
    const s = parts.server;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    await store.close();
  };
  try {
    await store.migrate();
    await assertSecretOpensKeys(store, secret);
    const generatedAdminKey = await ensureAdminKey(store, config.ADMIN_API_KEY);
    logger.info({ database: store.kind, role: config.ROLE }, "store ready");
    const delivering = config.ROLE === "worker" || config.ROLE === "all";

    // Listeners first: a port already taken stops the start before any work is claimed.
    let port: number | null = null;
    if (config.ROLE === "api" || config.ROLE === "all") {
      const app = buildApp({ store, config, logger });
      parts.server = await new Promise<ServerType>((resolve, reject) => {
        const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
        s.once("error", reject);
      });
      port = (parts.server.address() as AddressInfo).port;
      logger.info({ host: config.HOST, port }, "http listening");
    }
    // Bounces and feedback reports in: where the worker runs, when there is a return-path domain.
    const inboundPort = overrides.inboundPort ?? config.INBOUND_SMTP_PORT;
    if (delivering && config.RETURN_PATH_DOMAIN && (overrides.inboundPort !== undefined || inboundPort !== 0)) {
      parts.inbound = await startInboundListener({
        store,
        logger,
        host: config.INBOUND_SMTP_HOST,
        port: inboundPort,
        domain: config.RETURN_PATH_DOMAIN,
        key: secret.key("verp"),
        maxBytes: config.INBOUND_MAX_BYTES,
        name: config.HELO_NAME,
      });
    }

    if (delivering) {
      // One resolver (and so one DNS cache) for MX look-ups, MTA-STS and webhook hosts.
      const resolver = createResolver({ servers: config.DNS_SERVERS });
      parts.worker = await startWorker({
        store,
        logger,
        deliver: {
          resolver,
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
      // Webhooks: the dispatcher runs wherever the delivery worker does.
      parts.dispatcher = await startDispatcher({
        store,
        logger,
        secret,
        http: { resolver, allowNetworks: config.DELIVERY_ALLOW_NETWORKS },
        concurrency: config.WEBHOOK_CONCURRENCY,
        retry: { baseMs: config.WEBHOOK_RETRY_BASE, lifetimeMs: config.WEBHOOK_RETRY_LIFETIME },
        timeoutMs: config.WEBHOOK_TIMEOUT,
      });
    }
    return { store, port, inboundPort: parts.inbound?.port ?? null, generatedAdminKey, worker: parts.worker, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
