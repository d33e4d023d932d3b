/** The real Hono app over a real store, exercised with `app.request()`; plus small JSON helpers. */
import { ensureAdminKey } from "../../src/accounts/accounts.js";
import { loadConfig, type Config } from "../../src/config.js";
import type { Store } from "../../src/db/client.js";
import { buildApp } from "../../src/http/app.js";
import { generateKey } from "../../src/keys/keys.js";
import { createLogger } from "../../src/lib/logger.js";
import { testStore } from "./store.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** A DATA_DIR of the test's own (the service secret is generated there). */
const scratchDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "postline-test-"));

export interface TestApp {
  store: Store;
  config: Config;
  adminKey: string;
  request(method: string, path: string, opts?: { key?: string; body?: unknown; raw?: string | Uint8Array; headers?: Record<string, string> }): Promise<Response>;
  json<T = any>(method: string, path: string, opts?: { key?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: T; headers: Headers }>;
  /** A new account; returns its id and full key. */
  account(name?: string): Promise<{ id: string; key: string }>;
  close(): Promise<void>;
}

export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const store = await testStore();
  // Most tests send from example.com without registering it; the domain rule has its own tests.
  const dataDir = scratchDir();
  const config = loadConfig({ LOG_LEVEL: "silent", MAX_MESSAGE_BYTES: "20MB", REQUIRE_VERIFIED_DOMAIN: "false", DATA_DIR: dataDir, ...env });
  const adminKey = generateKey();
  await ensureAdminKey(store, adminKey);
  const app = buildApp({ store, config, logger: createLogger("silent") });

  const request: TestApp["request"] = (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let body: string | Uint8Array | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    return Promise.resolve(app.request(path, { method, headers, body: body as RequestInit["body"] }));
  };
  const json: TestApp["json"] = async (method, path, opts) => {
    const res = await request(method, path, opts);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  return {
    store,
    config,
    adminKey,
    request,
    json,
    account: async (name = "test account") => {
      const res = await json("POST", "/accounts", { key: adminKey, body: { name } });
      if (res.status !== 201) throw new Error(`account creation failed: ${res.status} ${JSON.stringify(res.body)}`);
      return { id: res.body.id, key: res.body.api_key.key };
    },
    close: async () => {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
