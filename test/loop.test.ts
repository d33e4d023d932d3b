/**
 * The whole loop of issue #5 through one running Postline (`start()`, ROLE=all), on loopback
 * only: an app registers a webhook and sends over HTTP; the engine delivers over SMTP with a
 * VERP envelope sender; the receiving side answers later with a real DSN (or an ARF report) to
 * the inbound listener; the recipient changes state, the app's receiver gets the event signed
 * (verified with the `standardwebhooks` package), and the next message to that address is
 * suppressed — with its own signed `email.suppressed`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { generateKey } from "../src/keys/keys.js";
import { createLogger } from "../src/lib/logger.js";
import { start, type Running } from "../src/server.js";
import { startDnsServer, type DnsServer } from "./helpers/dns-server.js";
import { startSmtpServer, type RunningSmtpServer } from "./helpers/smtp-servers.js";
import { scratchDatabase } from "./helpers/store.js";
import { startReceiver, until, type Receiver } from "./helpers/webhook-receiver.js";
import { arfReport, postfixDsn, returnedHeaders } from "./inbound/samples.js";
import { smtpSend } from "./inbound/smtp-client.js";

const RETURN_PATH = "bounces.postline.test";
const DEST = "dest.test";

let running: Running;
let dns: DnsServer;
let mx: RunningSmtpServer;
let hooks: Receiver;
let scratch: { url: string; drop(): Promise<void> } | undefined;
let dataDir: string;
let key: string;
let secret: string;

async function api(method: string, p: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${running.port}${p}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** The verified events of `type` for `recipient` that the app's receiver got; throws on a bad signature. */
function signedEvents(type: string, recipient: string) {
  const wh = new Webhook(secret);
  return hooks.received
    .map((h) => wh.verify(h.body, h.headers as Record<string, string>) as { type: string; data: Record<string, any> })
    .filter((e) => e.type === type && e.data.recipient === recipient);
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "postline-loop-"));
  scratch = process.env.DATABASE_URL ? await scratchDatabase(process.env.DATABASE_URL) : undefined;
  dns = await startDnsServer({ [DEST]: { MX: [{ preference: 10, exchange: `mx.${DEST}` }] }, [`mx.${DEST}`]: { A: ["127.0.0.1"] } });
  mx = await startSmtpServer();
  hooks = await startReceiver();
  const adminKey = generateKey();
  const config = loadConfig({
    DATA_DIR: dataDir,
    PORT: "0",
    LOG_LEVEL: "silent",
    ADMIN_API_KEY: adminKey,
    DNS_SERVERS: dns.address,
    SMTP_PORT: String(mx.port),
    DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8",
    REQUIRE_VERIFIED_DOMAIN: "false",
    RETURN_PATH_DOMAIN: RETURN_PATH,
    ...(scratch ? { DATABASE_URL: scratch.url } : {}),
  });
  running = await start(config, createLogger("silent"), { inboundPort: 0 });
  key = adminKey;
  const acct = await api("POST", "/accounts", { name: "loop" });
  key = acct.body.api_key.key;
  const created = await api("POST", "/webhooks", {
    url: `${hooks.base}/hooks`,
    events: ["email.delivered", "email.bounced", "email.complained", "email.suppressed"],
  });
  expect(created.status).toBe(201);
  secret = created.body.secret;
});

afterAll(async () => {
  await running?.stop();
  await Promise.all([hooks?.close(), mx?.close(), dns?.close()]);
  await scratch?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Sends one message to `to` over the API and waits until the receiving server has it and the app was told. */
async function deliverOne(to: string) {
  const sent = await api("POST", "/messages", { from: "Sender <sender@example.com>", to, subject: "Loop", text: "Hello" });
  expect(sent.status).toBe(202);
  const recipient: string = sent.body.recipients[0].id;
  const got = await until(() => mx.received.find((m) => m.to.includes(to)), `the receiving server to get ${to}`);
  await until(() => signedEvents("email.delivered", recipient).length === 1, `email.delivered for ${to}`);
  return { id: sent.body.id as string, messageIdHeader: sent.body.message_id as string, recipient, verp: got.from };
}

describe("the bounce and complaint loop through one running Postline", () => {
  it("turns a later DSN into bounced, a signed email.bounced, and suppresses the next message", async () => {
    const to = `gone@${DEST}`;
    const m = await deliverOne(to);
    // The envelope sender names the recipient (VERP on RETURN_PATH_DOMAIN), not the From address.
    expect(m.verp).toMatch(new RegExp(`^b\\+[0-9a-z]{26}-[0-9a-z]{16}@${RETURN_PATH.replace(/\./g, "\\.")}$`));

    // An hour later, the receiving side's MTA sends a DSN to the envelope sender, as Postfix builds it.
    const dsn = postfixDsn({
      to: m.verp,
      recipients: [{ email: to, action: "failed", status: "5.1.1", remoteMta: `mx.${DEST}`, diagnostic: "smtp; 550 5.1.1 <gone@dest.test>: Recipient address rejected: User unknown" }],
      returned: returnedHeaders({ from: m.verp, to: [to], messageId: m.messageIdHeader }),
    });
    const x = await smtpSend(running.inboundPort!, { mailFrom: "", rcptTo: [m.verp], data: dsn });
    expect(x.end).toMatch(/^250/);

    const [bounced] = await until(() => signedEvents("email.bounced", m.recipient).length === 1 && signedEvents("email.bounced", m.recipient), "a signed email.bounced");
    expect(bounced!.data).toMatchObject({ message: m.id, email: to, message_id: m.messageIdHeader, smtp: { enhanced: "5.1.1" }, bounce: { kind: "hard", source: "dsn" } });
    const shown = await api("GET", `/messages/${m.id}`);
    expect(shown.body.recipients[0]).toMatchObject({ id: m.recipient, status: "bounced" });
    const listed = await api("GET", `/suppressions?email=${encodeURIComponent(to)}`);
    expect(listed.body.data).toEqual([expect.objectContaining({ email: to, reason: "hard_bounce" })]);

    // The next message to that address is stored suppressed, never sent, and the app is told.
    const before = mx.received.length;
    const again = await api("POST", "/messages", { from: "Sender <sender@example.com>", to: [to, `other@${DEST}`], subject: "Again", text: "Hi" });
    expect(again.status).toBe(202);
    const [gone, other] = again.body.recipients;
    expect(gone).toMatchObject({ email: to, status: "suppressed" });
    expect(other).toMatchObject({ status: "queued" });
    await until(() => signedEvents("email.suppressed", gone.id).length === 1, "a signed email.suppressed");
    await until(() => signedEvents("email.delivered", other.id).length === 1, "the other recipient delivered");
    const sentAgain = mx.received.slice(before);
    expect(sentAgain.flatMap((r) => r.to)).toEqual([`other@${DEST}`]);
  });

  it("turns an ARF abuse report into complained, a signed email.complained, and a suppression", async () => {
    const to = `fbl@${DEST}`;
    const m = await deliverOne(to);
    const report = arfReport({ to: m.verp, rcpt: to, mailFrom: m.verp, returned: returnedHeaders({ from: m.verp, to: [to], messageId: m.messageIdHeader }) });
    const x = await smtpSend(running.inboundPort!, { mailFrom: "fbl@feedback.example.net", rcptTo: [m.verp], data: report });
    expect(x.end).toMatch(/^250/);

    const [complained] = await until(() => signedEvents("email.complained", m.recipient).length === 1 && signedEvents("email.complained", m.recipient), "a signed email.complained");
    expect(complained!.data).toMatchObject({ message: m.id, email: to, message_id: m.messageIdHeader });
    expect((await api("GET", `/messages/${m.id}`)).body.recipients[0].status).toBe("complained");
    const listed = await api("GET", `/suppressions?email=${encodeURIComponent(to)}`);
    expect(listed.body.data).toEqual([expect.objectContaining({ email: to, reason: "complaint" })]);
    // The next message to that address is stored suppressed and never sent.
    const before = mx.received.length;
    const again = await api("POST", "/messages", { from: "Sender <sender@example.com>", to: [to], subject: "Again", text: "Hi" });
    expect(again.status).toBe(202);
    expect(again.body.recipients[0]).toMatchObject({ email: to, status: "suppressed" });
    await until(() => signedEvents("email.suppressed", again.body.recipients[0].id).length === 1, "a signed email.suppressed");
    expect(mx.received.slice(before).flatMap((r) => r.to)).not.toContain(to);
    // Every webhook POST carried a stable id per event: no event was delivered twice.
    const ids = hooks.received.map((h) => h.headers["webhook-id"]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("refuses a DSN to a forged return-path token and changes nothing", async () => {
    const to = `kept@${DEST}`;
    const m = await deliverOne(to);
    const forged = m.verp.replace(/-([0-9a-z])/, (_s, c: string) => `-${c === "a" ? "b" : "a"}`);
    const dsn = postfixDsn({ to: forged, recipients: [{ email: to, action: "failed", status: "5.1.1" }], returned: returnedHeaders({ from: forged, to: [to], messageId: m.messageIdHeader }) });
    const x = await smtpSend(running.inboundPort!, { mailFrom: "", rcptTo: [forged], data: dsn });
    expect(x.rcpt[0]).toMatch(/^550/);
    expect(x.end).toBeNull();
    expect((await api("GET", `/messages/${m.id}`)).body.recipients[0].status).toBe("delivered");
    expect((await api("GET", `/suppressions?email=${encodeURIComponent(to)}`)).body.data).toEqual([]);
  });
});
