/**
 * STARTTLS, implicit TLS and AUTH against `smtp-server` with a self-signed certificate made at
 * test time.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SMTPServerAuthentication, SMTPServerOptions } from "smtp-server";
import { openSession, type SessionOptions, type SmtpSession } from "../../src/smtp/connection.js";
import { startSmtpServer, testCertificate, type RunningSmtpServer, type TestCertificate } from "../helpers/smtp-servers.js";

const FAST = { connect: 2000, greeting: 2000, ehlo: 2000, starttls: 2000, auth: 2000, mail: 2000, rcpt: 2000, dataInit: 2000, dataBlock: 2000, dataDone: 2000, rset: 1000, quit: 500 };

let cert: TestCertificate;
let servers: RunningSmtpServer[] = [];
let sessions: SmtpSession[] = [];
beforeAll(() => {
  cert = testCertificate(["mx.test"]);
});
afterEach(async () => {
  for (const s of sessions) s.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  sessions = [];
});

async function serve(options: SMTPServerOptions = {}) {
  const s = await startSmtpServer({ key: cert.key, cert: cert.cert, ...options });
  servers.push(s);
  return s;
}

async function open(port: number, extra: Partial<SessionOptions>) {
  const r = await openSession({ host: "127.0.0.1", port, heloName: "client.test", tls: "opportunistic", timeouts: FAST, ...extra });
  if (r.ok) sessions.push(r.session);
  return r;
}

describe("TLS and AUTH", () => {
  it("upgrades with STARTTLS to a self-signed server when TLS is opportunistic, and records the TLS version", async () => {
    const server = await serve();
    const r = await open(server.port, { serverName: "mx.test" });
    if (!r.ok) throw new Error(r.error.message);
    const s = r.session;
    expect(s.tls).toMatchObject({ version: expect.stringMatching(/^TLSv1\.[23]$/), authorized: false });
    expect(s.tls?.cipher).toMatch(/^TLS_|AES|CHACHA/);
    expect(s.extensions.has("STARTTLS")).toBe(false); // from the EHLO after TLS
    const tx = await s.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("over tls\r\n") });
    expect(tx.ok).toBe(true);
    expect(server.received[0]?.secure).toBe(true);
    await s.quit();
  });

  it("fails with a clear tls error when TLS is required and the certificate is self-signed", async () => {
    const server = await serve();
    const r = await open(server.port, { tls: "required", serverName: "mx.test" });
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", command: "STARTTLS", tlsTried: true } });
    if (!r.ok) expect(r.error.message).toMatch(/self[- ]signed certificate/i);
  });

  it("verifies the certificate against the MX name when TLS is required and the CA is trusted", async () => {
    const server = await serve();
    const good = await open(server.port, { tls: "required", serverName: "mx.test", ca: cert.cert });
    if (!good.ok) throw new Error(good.error.message);
    expect(good.session.tls?.authorized).toBe(true);
    await good.session.quit();

    const wrongName = await open(server.port, { tls: "required", serverName: "other.test", ca: cert.cert });
    expect(wrongName).toMatchObject({ ok: false, error: { kind: "tls" } });
    if (!wrongName.ok) expect(wrongName.error.message).toMatch(/other\.test/);
  });

  it("never starts TLS when told none, even if STARTTLS is offered", async () => {
    const server = await serve();
    const r = await open(server.port, { tls: "none" });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.session.tls).toBeNull();
    expect(r.session.extensions.has("STARTTLS")).toBe(true);
  });

  it("authenticates with AUTH PLAIN over implicit TLS", async () => {
    const seen: SMTPServerAuthentication[] = [];
    const server = await serve({
      secure: true,
      authOptional: false,
      onAuth(auth, _s, cb) {
        seen.push(auth);
        cb(null, { user: auth.username });
      },
    });
    const r = await open(server.port, { implicitTls: true, tls: "required", serverName: "mx.test", ca: cert.cert, auth: { user: "relay-user", pass: "s3cret pass" } });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.session.tls?.authorized).toBe(true);
    expect(seen.map((a) => [a.method, a.username, a.password])).toEqual([["PLAIN", "relay-user", "s3cret pass"]]);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("relayed\r\n") });
    expect(tx.ok).toBe(true);
    expect(server.received[0]?.user).toBe("relay-user");
  });

  it("authenticates with AUTH LOGIN after STARTTLS when PLAIN is not offered", async () => {
    const seen: string[] = [];
    const server = await serve({
      authMethods: ["LOGIN"],
      authOptional: false,
      onAuth(auth, _s, cb) {
        seen.push(`${auth.method}:${auth.username}:${auth.password}`);
        cb(null, { user: auth.username });
      },
    });
    const r = await open(server.port, { auth: { user: "u", pass: "p" } });
    if (!r.ok) throw new Error(r.error.message);
    expect(seen).toEqual(["LOGIN:u:p"]);
  });

  it("reports rejected credentials as a reply error on AUTH without echoing them", async () => {
    const server = await serve({
      secure: true,
      onAuth: (_a, _s, cb) => cb(Object.assign(new Error("5.7.8 Authentication credentials invalid"), { responseCode: 535 })),
    });
    const r = await open(server.port, { implicitTls: true, auth: { user: "u", pass: "hunter2" } });
    expect(r).toMatchObject({ ok: false, error: { kind: "reply", command: "AUTH", reply: { code: 535 } } });
    if (!r.ok) expect(JSON.stringify(r.error)).not.toContain("hunter2");
  });

  it("refuses to send credentials over plain text even when the server offers AUTH", async () => {
    let authTries = 0;
    const server = await startSmtpServer({
      allowInsecureAuth: true,
      hideSTARTTLS: true,
      onAuth: (_a, _s, cb) => (authTries++, cb(null, { user: 1 })),
    });
    servers.push(server);
    const r = await open(server.port, { auth: { user: "u", pass: "p" } });
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", command: "AUTH" } });
    const none = await open(server.port, { tls: "none", auth: { user: "u", pass: "p" } });
    expect(none).toMatchObject({ ok: false, error: { kind: "tls", command: "AUTH" } });
    expect(authTries).toBe(0);
  });

  it("fails with kind tls when implicit TLS meets a plain-text server", async () => {
    const server = await startSmtpServer({});
    servers.push(server);
    const r = await open(server.port, { implicitTls: true });
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", command: "CONNECT" } });
  });
});
