/**
 * The session against raw TCP servers with byte-exact scripted replies, written in split chunks:
 * HELO fallback, pipelining order, broken and hostile servers, timeouts, dropped connections.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openSession, type SessionOptions, type SmtpSession } from "../../src/smtp/connection.js";
import { scriptedServer, testCertificate, waitUntil, type ScriptedPeer, type ScriptedServer, type TestCertificate } from "../helpers/smtp-servers.js";

const FAST = { connect: 2000, greeting: 2000, ehlo: 2000, starttls: 2000, mail: 2000, rcpt: 2000, dataInit: 2000, dataBlock: 2000, dataDone: 2000, rset: 1000, quit: 500 };
const SHORT = 250;

let servers: ScriptedServer[] = [];
let sessions: SmtpSession[] = [];
let cert: TestCertificate;
beforeAll(() => {
  cert = testCertificate();
});
afterEach(async () => {
  for (const s of sessions) s.close();
  await Promise.all(servers.map((s) => s.close()));
  for (const s of servers) expect(s.errors).toEqual([]);
  servers = [];
  sessions = [];
});

async function script(fn: (p: ScriptedPeer) => Promise<void>): Promise<ScriptedServer> {
  const s = await scriptedServer(fn);
  servers.push(s);
  return s;
}

function connect(port: number, extra: Partial<SessionOptions> = {}) {
  return openSession({ host: "127.0.0.1", port, heloName: "client.test", tls: "opportunistic", timeouts: FAST, ...extra }).then((r) => {
    if (r.ok) sessions.push(r.session);
    return r;
  });
}

/** Reads the next line and insists on its content. */
async function want(p: ScriptedPeer, expected: string | RegExp): Promise<string> {
  const line = await p.line();
  if (line === null) throw new Error(`client closed; wanted ${expected}`);
  if (typeof expected === "string" ? line !== expected : !expected.test(line)) {
    throw new Error(`got ${JSON.stringify(line)}, wanted ${expected}`);
  }
  return line;
}

/** Greeting and a plain EHLO answer with `ext` (one piece per keyword). */
async function hello(p: ScriptedPeer, ext: string[] = []) {
  await p.send("220 mx.test ESMTP\r\n");
  await want(p, "EHLO client.test");
  const lines = ["mx.test greets you", ...ext];
  await p.send(...lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}\r\n`));
}

describe("SMTP session with scripted servers", () => {
  it("falls back to HELO after EHLO 502 and then sends one command at a time", async () => {
    const srv = await script(async (p) => {
      await p.send("220 mx.test ESMTP\r\n");
      await want(p, "EHLO client.test");
      await p.send("502 5.5.1 ", "EHLO not implemented\r\n");
      await want(p, "HELO client.test");
      await p.send("250 mx.test\r\n");
      await want(p, "MAIL FROM:<s@sender.test>");
      await p.send("250 2.1.0 ok\r\n");
      await want(p, "RCPT TO:<a@rcpt.test>");
      await p.send("250 2.1.5 ok\r\n");
      await want(p, "RCPT TO:<b@rcpt.test>");
      await p.send("550 5.1.1 no such user\r\n");
      await want(p, "DATA");
      await p.send("354 go ahead\r\n");
      const data = await p.until("\r\n.\r\n");
      if (data?.toString() !== "hello\r\n.\r\n") throw new Error(`bad data ${data}`);
      await p.send("250 2.0.0 queued as X\r\n");
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.session.hello).toBe("HELO");
    expect(r.session.extensions.size).toBe(0);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test", "b@rcpt.test"], data: Buffer.from("hello") });
    expect(tx).toMatchObject({ ok: true, data: { code: 250, enhanced: "2.0.0" } });
    if (!tx.ok) return;
    expect(tx.rcpts.map((x) => x.accepted)).toEqual([true, false]);
    await r.session.quit();
    await srv.done();
    // Without PIPELINING each command arrived only after the reply to the one before it.
    const log = srv.peers[0]!.log;
    const cmds = log.filter((l) => /^(MAIL|RCPT|DATA)/.test(l.line)).map((l) => l.repliesBefore);
    expect(cmds).toEqual([3, 4, 5, 6]);
  });

  it("pipelines MAIL, every RCPT and DATA in one batch before any reply when PIPELINING is offered", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING", "8BITMIME"]);
      await want(p, /^MAIL FROM:<s@sender.test>$/);
      await want(p, "RCPT TO:<a@rcpt.test>");
      await want(p, "RCPT TO:<b@rcpt.test>");
      await want(p, "RCPT TO:<c@rcpt.test>");
      await want(p, "DATA");
      // All replies at once, cut at awkward places.
      await p.send("250 2.1.0 ok\r\n250 2.1.5 ok\r", "\n550-5.1.1 gone\r\n550 5.1.1 really", " gone\r\n250 2.1.5 ok\r\n35", "4 go\r\n");
      await p.until("\r\n.\r\n");
      await p.send("250 2.0.0 ok\r\n");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test", "b@rcpt.test", "c@rcpt.test"], data: Buffer.from("x\r\n") });
    expect(tx.ok).toBe(true);
    if (!tx.ok) return;
    expect(tx.rcpts.map((x) => [x.reply.code, x.accepted])).toEqual([
      [250, true],
      [550, false],
      [250, true],
    ]);
    expect(tx.rcpts[1]?.reply.lines).toEqual(["5.1.1 gone", "5.1.1 really gone"]);
    await srv.done();
    const batch = srv.peers[0]!.log.filter((l) => /^(MAIL|RCPT|DATA)/.test(l.line));
    expect(batch.map((l) => l.repliesBefore)).toEqual([2, 2, 2, 2, 2]); // greeting + EHLO only
  });

  it("pipelines the RSET of a reused session ahead of MAIL, RCPT and DATA: one batch, one round trip", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      for (const w of ["MAIL", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      await p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      await p.send("250 2.0.0 first\r\n");
      // The second transaction: nothing is answered until the whole batch is in, so a client
      // that waited for the reply to RSET before sending MAIL would hang here.
      await want(p, "RSET");
      await want(p, "MAIL FROM:<s@sender.test>");
      await want(p, "RCPT TO:<b@rcpt.test>");
      await want(p, "DATA");
      await p.send("250 2.0.0 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      await p.send("250 2.0.0 second\r\n");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const first = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("one\r\n") });
    const second = await r.session.send({ from: "s@sender.test", to: ["b@rcpt.test"], data: Buffer.from("two\r\n") }, { reset: true });
    expect(first).toMatchObject({ ok: true, data: { code: 250, text: "2.0.0 first" } });
    expect(second).toMatchObject({ ok: true, data: { code: 250, text: "2.0.0 second" } });
    await srv.done();
    const batch = srv.peers[0]!.log.filter((l) => /^(RSET|MAIL FROM:<s@sender.test>$|RCPT TO:<b|DATA)/.test(l.line)).slice(-4);
    expect(batch.map((l) => l.line.slice(0, 4))).toEqual(["RSET", "MAIL", "RCPT", "DATA"]);
    expect(new Set(batch.map((l) => l.repliesBefore)).size).toBe(1); // all four before the reply to RSET
  });

  it("closes the session and sends no data when the pipelined RSET is answered 421, reporting RSET", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      for (const w of ["RSET", "MAIL", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      // A server closing an idle connection: 421 to the first command, then nothing more.
      await p.send("421 4.4.2 mx.test closing idle connection\r\n250 ok\r\n250 ok\r\n354 go\r\n");
      if ((await p.line()) !== null) throw new Error("the client sent more after the 421");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("secret body\r\n") }, { reset: true });
    expect(tx).toMatchObject({ ok: false, rcpts: [], error: { kind: "reply", command: "RSET", reply: { code: 421, enhanced: "4.4.2" } } });
    expect(r.session.usable).toBe(false);
    await srv.done();
    expect(srv.peers[0]!.log.some((l) => l.line.includes("secret"))).toBe(false);
  });

  it("ends the data with a lone dot when every RCPT failed but DATA got 354", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      for (const w of ["MAIL", "RCPT", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      await p.send("250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go\r\n");
      await want(p, ".");
      await p.send("554 5.5.1 no valid recipients\r\n");
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test", "b@rcpt.test"], data: Buffer.from("secret body\r\n") });
    expect(tx).toMatchObject({ ok: true, data: null });
    expect(r.session.usable).toBe(true);
    await r.session.quit();
    await srv.done();
    expect(srv.peers[0]!.log.some((l) => l.line.includes("secret"))).toBe(false);
  });

  it("reports a DATA command refused after accepted recipients as a reply error with the recipients", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      for (const w of ["MAIL", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      await p.send("250 ok\r\n250 ok\r\n451 4.3.0 try later\r\n");
      await p.line();
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("x") });
    expect(tx).toMatchObject({ ok: false, error: { kind: "reply", command: "DATA", reply: { code: 451, enhanced: "4.3.0" } }, rcpts: [{ accepted: true }] });
  });

  it("reports a 554 greeting as a reply error and says QUIT", async () => {
    const srv = await script(async (p) => {
      await p.send("554 5.7.1 ", "no service for you\r\n");
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port);
    expect(r).toMatchObject({ ok: false, error: { kind: "reply", command: "GREETING", reply: { code: 554, enhanced: "5.7.1" } } });
    await srv.done();
  });

  it("times out when the server never greets", async () => {
    const srv = await script(async (p) => {
      await p.line(); // until the client gives up
    });
    const started = Date.now();
    const r = await connect(srv.port, { timeouts: { ...FAST, greeting: SHORT } });
    expect(r).toMatchObject({ ok: false, error: { kind: "timeout", command: "GREETING" } });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("times out when the server hangs after the greeting", async () => {
    const srv = await script(async (p) => {
      await p.send("220 mx.test ESMTP\r\n");
      await want(p, "EHLO client.test");
      await p.line(); // never answers; returns when the client closes
    });
    const r = await connect(srv.port, { timeouts: { ...FAST, ehlo: SHORT } });
    expect(r).toMatchObject({ ok: false, error: { kind: "timeout", command: "EHLO" } });
    await srv.done();
  });

  it("fails with kind tls when the server sends garbage instead of a TLS handshake", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["STARTTLS"]);
      await want(p, "STARTTLS");
      await p.send("220 go ahead\r\n");
      await p.send("this is not TLS at all\r\n");
      p.destroy();
    });
    const r = await connect(srv.port);
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", command: "STARTTLS", tlsTried: true } });
  });

  it("fails with kind tls when the server closes during the handshake", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["STARTTLS"]);
      await want(p, "STARTTLS");
      await p.send("220 go ahead\r\n");
      p.destroy();
    });
    const r = await connect(srv.port);
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", tlsTried: true } });
  });

  it("gives a stalled TLS handshake its own timeout and reports kind tls", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["STARTTLS"]);
      await want(p, "STARTTLS");
      await p.send("220 go ahead\r\n");
      await p.until("never"); // reads the ClientHello and says nothing until the client leaves
    });
    const r = await connect(srv.port, { timeouts: { ...FAST, starttls: SHORT } });
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", command: "STARTTLS", tlsTried: true } });
    if (!r.ok) expect(r.error.message).toMatch(/within 250 ms/);
  });

  it("ignores a reply injected after 220 STARTTLS and asks EHLO again over TLS", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["STARTTLS", "SIZE 10"]);
      await want(p, "STARTTLS");
      await p.send("220 go\r\n250 injected\r\n"); // one packet
      p.startTls(cert);
      await want(p, "EHLO client.test");
      await p.send("250-mx.test over TLS\r\n250 PIPELINING\r\n");
      for (const w of ["MAIL", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      await p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      await p.send("250 2.0.0 sent over TLS\r\n");
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const s = r.session;
    expect(s.tls?.version).toMatch(/^TLSv1\.[23]$/);
    expect(s.tls?.authorized).toBe(false);
    // Capabilities come from the EHLO after TLS only (RFC 3207 §4.2).
    expect([...s.extensions.keys()]).toEqual(["PIPELINING"]);
    const tx = await s.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("x\r\n") });
    expect(tx).toMatchObject({ ok: true, data: { code: 250, text: "2.0.0 sent over TLS" } });
    await s.quit();
    await srv.done();
  });

  it("reports kind closed for DATA when the server drops the connection mid-DATA", async () => {
    const srv = await script(async (p) => {
      await hello(p);
      await want(p, /^MAIL/);
      await p.send("250 ok\r\n");
      await want(p, /^RCPT/);
      await p.send("250 ok\r\n");
      await want(p, "DATA");
      await p.send("354 go\r\n");
      await p.until("line 1000\r\n");
      p.destroy();
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const body = Array.from({ length: 50_000 }, (_, i) => `line ${i}`).join("\r\n");
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from(body) });
    expect(tx).toMatchObject({ ok: false, error: { kind: "closed", command: "DATA" }, rcpts: [{ to: "a@rcpt.test", accepted: true }] });
    expect(r.session.usable).toBe(false);
  });

  it("times out waiting for the reply after the final dot", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      for (const w of ["MAIL", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      await p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      await p.line(); // silent until the client leaves
    });
    const r = await connect(srv.port, { timeouts: { ...FAST, dataDone: SHORT } });
    if (!r.ok) throw new Error(r.error.message);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("x\r\n") });
    expect(tx).toMatchObject({ ok: false, error: { kind: "timeout", command: "DATA" } });
  });

  it("times out a data block the server stops reading", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      for (const w of ["MAIL", "RCPT", "DATA"]) await want(p, new RegExp(`^${w}`));
      await p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      p.socket().pause(); // stop reading: the client's writes back up
      await new Promise<void>((resolve) => p.socket().once("close", () => resolve()));
    });
    const r = await connect(srv.port, { timeouts: { ...FAST, dataBlock: SHORT } });
    if (!r.ok) throw new Error(r.error.message);
    const tx = await r.session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.alloc(64 * 1024 * 1024, "a") });
    expect(tx).toMatchObject({ ok: false, error: { kind: "timeout", command: "DATA" } });
  });

  it("refuses a reply line of 5000 characters as a protocol error", async () => {
    const srv = await script(async (p) => {
      const line = `220 ${"x".repeat(5000)}\r\n`;
      await p.send(line.slice(0, 1000), line.slice(1000, 4000), line.slice(4000));
      await p.line();
    });
    const r = await connect(srv.port);
    expect(r).toMatchObject({ ok: false, error: { kind: "protocol", command: "GREETING" } });
  });

  it("reads a multi-line EHLO split across chunks", async () => {
    const srv = await script(async (p) => {
      await p.send("220 mx.test ESMTP\r\n");
      await want(p, "EHLO client.test");
      await p.send("250-mx.te", "st hi\r\n250-PIPE", "LINING\r\n250-SIZE 1000\r", "\n250-AUTH=LOGIN\r\n250-auth PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\n", "250 8BITMIME\r\n");
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port, { tls: "none" });
    if (!r.ok) throw new Error(r.error.message);
    const ext = r.session.extensions;
    expect(Object.fromEntries(ext)).toEqual({ PIPELINING: "", SIZE: "1000", AUTH: "LOGIN PLAIN", ENHANCEDSTATUSCODES: "", "8BITMIME": "" });
    await r.session.quit();
    await srv.done();
  });

  it("drops the session when the server sends a reply nobody asked for", async () => {
    const srv = await script(async (p) => {
      await hello(p);
      await p.send("250 surprise\r\n");
      await p.line();
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    const session = r.session;
    await waitUntil(() => !session.usable, 2000, "the session to become unusable");
    const tx = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("x") });
    expect(tx).toMatchObject({ ok: false, error: { kind: "protocol" } });
  });

  it("fails with kind tls when TLS is required and STARTTLS is not offered", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["PIPELINING"]);
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port, { tls: "required", serverName: "mx.test" });
    expect(r).toMatchObject({ ok: false, error: { kind: "tls", command: "STARTTLS" } });
    await srv.done();
  });

  it("carries on in plain text when opportunistic STARTTLS is refused with 454", async () => {
    const srv = await script(async (p) => {
      await hello(p, ["STARTTLS"]);
      await want(p, "STARTTLS");
      await p.send("454 4.7.0 TLS not available\r\n");
      await want(p, "QUIT");
      await p.send("221 bye\r\n");
    });
    const r = await connect(srv.port);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.session.tls).toBeNull();
    await r.session.quit();
    await srv.done();
  });
});
