import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain } from "./helpers/process.js";
import { startDnsServer, type DnsServer } from "./helpers/dns-server.js";
import { startMailServer, type MailServer } from "./helpers/mail-server.js";
import { scratchDatabase } from "./helpers/store.js";

// The quick start, as a user runs it: the real entry point, a real socket, the configured database.
let dataDir: string;
let scratch: { url: string; drop(): Promise<void> } | undefined;
let env: Record<string, string>;
let dns: DnsServer;
let mx: MailServer;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "postline-main-"));
  scratch = process.env.DATABASE_URL ? await scratchDatabase(process.env.DATABASE_URL) : undefined;
  // The process resolves and delivers for real, but only to loopback: our DNS, our SMTP server.
  dns = await startDnsServer({ "example.org": { MX: [{ preference: 10, exchange: "mx.example.org" }] }, "mx.example.org": { A: ["127.0.0.1"] } });
  mx = await startMailServer();
  env = {
    DATA_DIR: dataDir,
    PORT: "0",
    LOG_LEVEL: "info",
    DNS_SERVERS: dns.address,
    SMTP_PORT: String(mx.port),
    DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8",
    // The quick start sends from example.com without a verified domain (test/http/send-domains.test.ts covers the rule).
    REQUIRE_VERIFIED_DOMAIN: "false",
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
  };
});
afterAll(async () => {
  await mx.close();
  await dns.close();
  await scratch?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function call(port: string, method: string, p: string, key: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any, requestId: res.headers.get("x-request-id") };
}

describe("the service process", () => {
  it("prints an admin key once on first start, accepts and delivers a message, and stops cleanly on SIGTERM", async () => {
    const first = runMain(env);
    const [, adminKey] = await first.waitFor(/admin API key[^\n]*\n\s+(pl_[A-Za-z0-9_-]+)/);
    const [, port] = await first.waitFor(/"port":(\d+)[^\n]*"http listening"/);
    const acct = await call(port!, "POST", "/accounts", adminKey!, { name: "quick start" });
    expect(acct.status).toBe(201);
    const sent = await call(port!, "POST", "/messages", acct.body.api_key.key, {
      from: "Alice <alice@example.com>",
      to: "bob@example.org",
      subject: "Hi",
      text: "Hello",
    });
    expect(sent.status).toBe(202);
    // Over a real socket too, every answer carries its request id: a success and a problem+json.
    expect(sent.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const refused = await call(port!, "POST", "/messages", acct.body.api_key.key, { from: "Alice <alice@example.com>", to: "bob@example.org" });
    expect(refused.status).toBe(422);
    expect(refused.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(refused.requestId).not.toBe(sent.requestId);
    // The worker role in the same process delivers it to the loopback MX.
    let got = await call(port!, "GET", `/messages/${sent.body.id}`, acct.body.api_key.key);
    for (let i = 0; i < 500 && got.body.recipients[0].status !== "delivered"; i++) {
      await new Promise((r) => setTimeout(r, 20));
      got = await call(port!, "GET", `/messages/${sent.body.id}`, acct.body.api_key.key);
    }
    expect(got.body.recipients[0]).toMatchObject({ status: "delivered", mx: "mx.example.org", ip: "127.0.0.1", last_response: { code: 250 } });
    expect(mx.received.map((r) => r.to)).toEqual([["bob@example.org"]]);
    // Never the key or the body in the logs (the one printed admin key line aside).
    const logs = first.stdout().split("\n").filter((l) => l.startsWith("{"));
    expect(logs.some((l) => l.includes('"path":"/messages"'))).toBe(true);
    expect(logs.join("\n")).not.toContain(acct.body.api_key.key);
    expect(logs.join("\n")).not.toContain(adminKey!);
    expect(logs.join("\n")).not.toContain("Hello");
    first.proc.kill("SIGTERM");
    expect(await first.exited()).toBe(0);

    // Second start on the same database: no new key printed, the message is still there.
    const second = runMain(env);
    const [, port2] = await second.waitFor(/"port":(\d+)[^\n]*"http listening"/);
    expect(second.stdout()).not.toContain("admin API key");
    const again = await call(port2!, "GET", `/messages/${sent.body.id}`, acct.body.api_key.key);
    expect(again.status).toBe(200);
    second.proc.kill("SIGTERM");
    expect(await second.exited()).toBe(0);
  });

  it("on a worker's first start, prints the admin key with no address of its own (it serves no HTTP)", async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), "postline-worker-"));
    const extra = process.env.DATABASE_URL ? await scratchDatabase(process.env.DATABASE_URL) : undefined;
    try {
      const w = runMain({ ...env, DATA_DIR: own, ROLE: "worker", INBOUND_SMTP_PORT: "0", ...(extra ? { DATABASE_URL: extra.url } : {}) });
      await w.waitFor(/admin API key[^\n]*\n\s+pl_[A-Za-z0-9_-]+\n.*curl -X POST http:\/\/<an API process>\/accounts/);
      w.proc.kill("SIGTERM");
      expect(await w.exited()).toBe(0);
    } finally {
      await extra?.drop();
      fs.rmSync(own, { recursive: true, force: true });
    }
  });

  it("refuses a bad configuration value with one line naming the variable", async () => {
    const bad = runMain({ ...env, PORT: "eighty" });
    expect(await bad.exited()).toBe(2);
    expect(bad.stderr().trim()).toMatch(/^postline: invalid PORT: must be an integer \(got "eighty"\)$/);
  });
});
