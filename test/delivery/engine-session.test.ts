import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import { createKey } from "../../src/keys/keys.js";
import { createLogger } from "../../src/lib/logger.js";
import { engineHarness, type EngineHarness } from "../helpers/engine.js";
import { getMessage } from "../../src/messages/queries.js";
import { startMailServer } from "../helpers/mail-server.js";
import { testCertificate } from "../helpers/smtp-servers.js";

let h: EngineHarness;
beforeAll(async () => {
  h = await engineHarness();
});
afterAll(() => h.close());

const mxFor = (domain: string, ip = "127.0.0.1") => ({
  [domain]: { MX: [{ preference: 10, exchange: `mx.${domain}` }] },
  [`mx.${domain}`]: { A: [ip] },
});

describe("SMTP sessions in the engine", () => {
  it("uses STARTTLS with a self-signed certificate (opportunistic) and records the TLS version", async () => {
    const cert = testCertificate(["mx.tls.example"]);
    const mx = await startMailServer({ options: { hideSTARTTLS: false, key: cert.key, cert: cert.cert } });
    h.publish(mxFor("tls.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "user@tls.example" });
    const [r] = await h.settle(m.id);
    expect(r!.status).toBe("delivered");
    expect(r!.tls).toMatchObject({ version: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String) });
    expect(mx.received[0]!.tls).toBe(true);
    // The try itself carries the same TLS (GET /messages/{id}'s history).
    const shown = await getMessage(h.store.db, h.accountId, m.id);
    expect(shown.recipients[0]!.history).toEqual([expect.objectContaining({ outcome: "delivered", tls: r!.tls, smtp: expect.objectContaining({ code: 250 }) })]);
    await w.stop();
    await mx.close();
  });

  it("retries in plain text once when the server offers STARTTLS and then breaks the handshake", async () => {
    const real = await startMailServer();
    let connections = 0;
    // First connection: a server that offers STARTTLS and answers the handshake with garbage.
    // Later ones: the real server, reached through this front.
    const front = net.createServer((sock) => {
      connections++;
      if (connections === 1) {
        sock.write("220 broken.example ESMTP\r\n");
        sock.on("data", (d) => {
          const line = d.toString();
          if (/^EHLO/i.test(line)) sock.write("250-broken.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
          else if (/^STARTTLS/i.test(line)) sock.write("220 go ahead\r\n", () => sock.write(Buffer.from("this is not a TLS record\r\n"), () => sock.end()));
        });
        return;
      }
      const up = net.connect(real.port, "127.0.0.1");
      sock.pipe(up).pipe(sock);
      up.on("error", () => sock.destroy());
      sock.on("error", () => up.destroy());
    });
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", () => r()));
    const port = (front.address() as net.AddressInfo).port;
    h.publish(mxFor("brokentls.example"));
    const w = await h.worker({ smtpPort: port });
    const m = await h.send({ to: "user@brokentls.example" });
    const [r] = await h.settle(m.id);
    expect(r).toMatchObject({ status: "delivered", attempts: 1, tls: null });
    expect(real.received).toHaveLength(1);
    expect(real.received[0]!.tls).toBe(false);
    expect(connections).toBe(2);
    await w.stop();
    front.close();
    await real.close();
  });

  it("fails a UTF-8 recipient clearly when the server does not offer SMTPUTF8, and sends nothing", async () => {
    const mx = await startMailServer({ options: { hideSMTPUTF8: true } });
    h.publish(mxFor("xn--bcher-kva.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "jörg@bücher.example" });
    const [r] = await h.settle(m.id);
    expect(r).toMatchObject({ status: "failed", lastEnhanced: "5.6.7" });
    expect(r!.lastText).toMatch(/SMTPUTF8/);
    expect(mx.received).toHaveLength(0);
    await w.stop();
    await mx.close();
  });

  it("sends an ASCII mailbox at an internationalised domain as A-labels, so it needs no SMTPUTF8", async () => {
    const mx = await startMailServer({ options: { hideSMTPUTF8: true } });
    h.publish(mxFor("xn--mller-kva.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "info@müller.example" });
    const [r] = await h.settle(m.id);
    // Delivered by a server without SMTPUTF8: the RCPT went in ASCII (smtp-server shows the
    // domain decoded again).
    expect(r).toMatchObject({ status: "delivered", email: "info@müller.example" });
    expect(mx.received.map((t) => t.to)).toEqual([["info@müller.example"]]);
    await w.stop();
    await mx.close();
  });

  it("fails only a Bcc recipient whose address is UTF-8 when the server lacks SMTPUTF8; the others are delivered", async () => {
    const mx = await startMailServer({ options: { hideSMTPUTF8: true } });
    h.publish(mxFor("mixed8.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "anna@mixed8.example", bcc: ["jörg@mixed8.example"] });
    const rows = await h.settle(m.id);
    expect(Object.fromEntries(rows.map((r) => [r.email, [r.status, r.lastEnhanced]]))).toEqual({
      "anna@mixed8.example": ["delivered", null],
      "jörg@mixed8.example": ["failed", "5.6.7"],
    });
    expect(mx.received.map((t) => t.to)).toEqual([["anna@mixed8.example"]]);
    await w.stop();
    await mx.close();
  });

  it("keeps a connection whose transaction was refused (550 to MAIL FROM) for the next message: RSET, not a new connection", async () => {
    let mails = 0;
    const mx = await startMailServer({ options: { onMailFrom: (_a, _s, cb) => (++mails === 1 ? cb(Object.assign(new Error("5.7.1 Not now"), { responseCode: 550 })) : cb()) } });
    h.publish(mxFor("refusedonce.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const a = await h.send({ to: "one@refusedonce.example" });
    expect((await h.settle(a.id))[0]).toMatchObject({ status: "bounced", lastCode: 550 });
    const b = await h.send({ to: "two@refusedonce.example" });
    expect((await h.settle(b.id))[0]!.status).toBe("delivered");
    expect(mx.received.map((t) => t.to)).toEqual([["two@refusedonce.example"]]);
    expect(mx.connections).toBe(1);
    await w.stop();
    await mx.close();
  });

  it("reuses a warm connection for the next message to the same host", async () => {
    const mx = await startMailServer();
    h.publish(mxFor("reuse.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const a = await h.send({ to: "one@reuse.example" });
    await h.settle(a.id);
    const b = await h.send({ to: "two@reuse.example" });
    await h.settle(b.id);
    expect(mx.received).toHaveLength(2);
    expect(mx.connections).toBe(1);
    await w.stop();
    await mx.close();
  });

  it("delivers on a fresh connection when a warm one answers its pipelined RSET with 421 (closed while idle)", async () => {
    const real = await startMailServer();
    // In front of the real server: the first connection passes the first transaction through,
    // then plays a server that closed it while idle (421 to the next command, then gone).
    let connections = 0;
    const seen: string[] = [];
    const front = net.createServer((sock) => {
      const n = ++connections;
      const up = net.connect(real.port, "127.0.0.1");
      up.pipe(sock);
      sock.on("data", (d) => {
        const text = d.toString("latin1");
        seen.push(`${n}:${text.slice(0, 4)}`);
        if (n === 1 && text.startsWith("RSET")) {
          up.unpipe(sock);
          up.destroy();
          sock.end("421 4.4.2 mx.stale.example closing idle connection\r\n");
          return;
        }
        up.write(d);
      });
      up.on("error", () => sock.destroy());
      sock.on("error", () => up.destroy());
    });
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", () => r()));
    h.publish(mxFor("stale.example"));
    const w = await h.worker({ smtpPort: (front.address() as net.AddressInfo).port });
    const a = await h.send({ to: "one@stale.example" });
    expect((await h.settle(a.id))[0]).toMatchObject({ status: "delivered", attempts: 1 });
    const b = await h.send({ to: "two@stale.example" });
    expect((await h.settle(b.id))[0]).toMatchObject({ status: "delivered", attempts: 1 });
    expect(real.received.map((m) => m.to)).toEqual([["one@stale.example"], ["two@stale.example"]]);
    expect(connections).toBe(2);
    // The second message went first to the warm connection, as RSET pipelined ahead of MAIL.
    expect(seen).toContain("1:RSET");
    await w.stop();
    front.close();
    await real.close();
  });

  it("sends everything through RELAY_URL with AUTH over implicit TLS, without MX look-ups", async () => {
    const cert = testCertificate(["relay.test"]);
    const logins: string[] = [];
    const relay = await startMailServer({
      options: {
        secure: true,
        key: cert.key,
        cert: cert.cert,
        disabledCommands: [],
        authOptional: false,
        authMethods: ["PLAIN", "LOGIN"],
        onAuth(auth, _s, cb) {
          logins.push(`${auth.username}:${auth.password}`);
          if (auth.username === "postline" && auth.password === "s3cret") cb(null, { user: auth.username });
          else cb(new Error("bad credentials"));
        },
      },
    });
    const before = h.dns.queries.length;
    // The relay's certificate must verify (it carries credentials): here its own CA is trusted.
    const w = await h.worker({ deliver: { tlsCa: cert.cert, relay: { host: "127.0.0.1", port: relay.port, implicitTls: true, auth: { user: "postline", pass: "s3cret" } } } });
    const m = await h.send({ to: ["x@anywhere.example", "y@elsewhere.example"] });
    const rows = await h.settle(m.id);
    expect(rows.map((r) => r.status)).toEqual(["delivered", "delivered"]);
    expect(logins).toEqual(["postline:s3cret", "postline:s3cret"].slice(0, logins.length));
    expect(logins.length).toBeGreaterThanOrEqual(1);
    expect(relay.received.flatMap((t) => t.to).sort()).toEqual(["x@anywhere.example", "y@elsewhere.example"]);
    expect(h.dns.queries.slice(before).filter((q) => /anywhere|elsewhere/.test(q.name))).toEqual([]);
    await w.stop();
    await relay.close();
  });

  it("never sends relay credentials over TLS whose certificate does not verify (implicit TLS or STARTTLS): deferred, no AUTH", async () => {
    const cert = testCertificate(["relay.test"]);
    const logins: string[] = [];
    const auth = { disabledCommands: [], authOptional: false, authMethods: ["PLAIN", "LOGIN"], onAuth: (a: { username?: string }, _s: unknown, cb: (e: Error | null, r?: { user: string }) => void) => (logins.push(a.username ?? ""), cb(null, { user: "x" })) };
    const implicit = await startMailServer({ options: { secure: true, key: cert.key, cert: cert.cert, ...auth } });
    const starttls = await startMailServer({ options: { hideSTARTTLS: false, key: cert.key, cert: cert.cert, ...auth } });
    for (const [srv, implicitTls] of [[implicit, true], [starttls, false]] as const) {
      const w = await h.worker({ deliver: { relay: { host: "127.0.0.1", port: srv.port, implicitTls, auth: { user: "postline", pass: "s3cret" } } } });
      const m = await h.send({ to: "x@anywhere.example" });
      const [r] = await h.settle(m.id, ["deferred"]);
      expect(r!.lastText).toMatch(/certificate|self.signed|verify/i);
      await w.stop();
    }
    expect(logins).toEqual([]);
    expect([...implicit.received, ...starttls.received]).toEqual([]);
    await implicit.close();
    await starttls.close();
  });

  it("shows attempts, the last reply, MX, IP and TLS on GET /messages/{id} and the timeline", async () => {
    const mx = await startMailServer({ script: { rcpt: (_a, n) => (n === 1 ? { code: 451, text: "4.7.1 Try later" } : undefined) } });
    h.publish(mxFor("api.example"));
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "user@api.example" });
    await h.settle(m.id);
    const key = await createKey(h.store.db, { accountId: h.accountId, name: "t", scopes: ["full"] });
    const app = buildApp({ store: h.store, config: loadConfig({ LOG_LEVEL: "silent" }), logger: createLogger("silent") });
    const auth = { headers: { authorization: `Bearer ${key.key}` } };
    const got = (await (await app.request(`/messages/${m.id}`, auth)).json()) as any;
    expect(got.status).toBe("delivered");
    expect(got.recipients[0]).toMatchObject({
      status: "delivered",
      attempts: 2,
      next_attempt_at: null,
      last_response: { code: 250, text: expect.stringContaining("queued") },
      mx: "mx.api.example",
      ip: "127.0.0.1",
      tls: null,
      delivered_at: expect.any(String),
    });
    // Every try, oldest first, with its host, TLS, reply and duration.
    expect(got.recipients[0].history).toEqual([
      { id: expect.stringMatching(/^att_/), at: expect.any(String), outcome: "deferred", mx: "mx.api.example", ip: "127.0.0.1", tls: null, smtp: { code: 451, enhanced: "4.7.1", text: "4.7.1 Try later" }, duration_ms: expect.any(Number) },
      { id: expect.stringMatching(/^att_/), at: expect.any(String), outcome: "delivered", mx: "mx.api.example", ip: "127.0.0.1", tls: null, smtp: { code: 250, enhanced: null, text: expect.stringContaining("queued") }, duration_ms: expect.any(Number) },
    ]);
    expect(Date.parse(got.recipients[0].history[0].at)).toBeLessThanOrEqual(Date.parse(got.recipients[0].history[1].at));
    // Lists stay light: no history there.
    const listed = (await (await app.request(`/messages?limit=1`, auth)).json()) as any;
    expect(listed.data[0].recipients[0]).not.toHaveProperty("history");
    const tl = (await (await app.request(`/messages/${m.id}/events`, auth)).json()) as any;
    const kinds = tl.data.map((e: any) => (e.type === "attempt" ? `attempt:${e.data.smtp.code}` : e.type));
    expect(kinds).toEqual(["email.accepted", "attempt:451", "email.deferred", "attempt:250", "email.delivered"]);
    expect(tl.data[1].data).toMatchObject({ mx: "mx.api.example", ip: "127.0.0.1", outcome: "deferred", smtp: { enhanced: "4.7.1" } });
    await w.stop();
    await mx.close();
  });
});
