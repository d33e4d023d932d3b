/**
 * The session against a real `smtp-server`: transactions, per-recipient replies, capability
 * checks (SIZE, 8BITMIME, SMTPUTF8), reuse with RSET, and local refusals.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { SMTPServerOptions } from "smtp-server";
import { openSession, type SessionOptions, type SmtpSession } from "../../src/smtp/connection.js";
import { encodeData } from "../../src/smtp/data.js";
import { startSmtpServer, readStream, type RunningSmtpServer } from "../helpers/smtp-servers.js";

const FAST = { connect: 2000, greeting: 2000, ehlo: 2000, starttls: 2000, mail: 2000, rcpt: 2000, dataInit: 2000, dataBlock: 5000, dataDone: 5000, rset: 2000, quit: 1000 };

let servers: RunningSmtpServer[] = [];
let sessions: SmtpSession[] = [];
afterEach(async () => {
  for (const s of sessions) s.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  sessions = [];
});

async function serve(options: SMTPServerOptions = {}) {
  const s = await startSmtpServer(options);
  servers.push(s);
  return s;
}

async function open(port: number, extra: Partial<SessionOptions> = {}): Promise<SmtpSession> {
  const r = await openSession({ host: "127.0.0.1", port, heloName: "client.test", tls: "none", timeouts: FAST, ...extra });
  if (!r.ok) throw new Error(`openSession failed: ${JSON.stringify(r.error)}`);
  sessions.push(r.session);
  return r.session;
}

const rejectWith = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

describe("SMTP session with smtp-server", () => {
  it("delivers one message to three recipients in one pipelined transaction, byte for byte", async () => {
    const server = await serve();
    const session = await open(server.port);
    expect(session.extensions.has("PIPELINING")).toBe(true);
    expect(session.hello).toBe("EHLO");
    expect(session.remote.greeting).toMatch(/ESMTP/);

    const message = "Subject: dots\r\n\r\n.leading dot\r\nbare LF\nbare CR\rsmuggle\n.\r\nMAIL FROM:<x@y>\r\n..two\r\nend";
    const r = await session.send({ from: "bounce@sender.test", to: ["a@rcpt.test", "b@rcpt.test", "c@rcpt.test"], data: Buffer.from(message) });

    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.mail.code).toBe(250);
    expect(r.rcpts.map((x) => [x.to, x.reply.code, x.accepted])).toEqual([
      ["a@rcpt.test", 250, true],
      ["b@rcpt.test", 250, true],
      ["c@rcpt.test", 250, true],
    ]);
    expect(r.data?.code).toBe(250);
    expect(server.received).toHaveLength(1);
    const got = server.received[0]!;
    expect(got.from).toBe("bounce@sender.test");
    expect(got.to).toEqual(["a@rcpt.test", "b@rcpt.test", "c@rcpt.test"]);
    const expected = "Subject: dots\r\n\r\n.leading dot\r\nbare LF\r\nbare CR\r\nsmuggle\r\n.\r\nMAIL FROM:<x@y>\r\n..two\r\nend\r\n";
    expect(got.data.toString("latin1")).toBe(expected);
    await session.quit();
    expect(session.usable).toBe(false);
  });

  it("reports a 550 for one recipient among 250s and delivers to the others", async () => {
    const server = await serve({
      onRcptTo(addr, _s, cb) {
        cb(addr.address === "gone@rcpt.test" ? rejectWith(550, "5.1.1 No such user") : undefined);
      },
    });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test", "gone@rcpt.test", "c@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rcpts[1]).toMatchObject({ to: "gone@rcpt.test", accepted: false, reply: { code: 550, enhanced: "5.1.1" } });
    expect(r.rcpts.filter((x) => x.accepted).map((x) => x.to)).toEqual(["a@rcpt.test", "c@rcpt.test"]);
    expect(r.data?.code).toBe(250);
    expect(server.received[0]?.to).toEqual(["a@rcpt.test", "c@rcpt.test"]);
  });

  it("defers a recipient the server answers with 451 and sends no data when none is accepted", async () => {
    const server = await serve({ onRcptTo: (_a, _s, cb) => cb(rejectWith(451, "4.7.1 Try again later")) });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test", "b@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rcpts.map((x) => [x.reply.code, x.reply.enhanced, x.accepted])).toEqual([
      [451, "4.7.1", false],
      [451, "4.7.1", false],
    ]);
    expect(r.data).toBeNull();
    expect(server.received).toHaveLength(0);
    // The transaction was left open: the next send resets it first and works.
    const again = await session.send({ from: "s@sender.test", to: ["c@rcpt.test"], data: Buffer.from("x\r\n") });
    expect(again.ok).toBe(true);
    expect(session.usable).toBe(true);
  });

  it("returns the 552 the server gives after the data as the answer for every accepted recipient", async () => {
    const server = await serve({
      onData(stream, _s, cb) {
        readStream(stream).then(() => cb(rejectWith(552, "5.3.4 Message too big for policy")));
      },
    });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test", "b@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rcpts.every((x) => x.accepted)).toBe(true);
    expect(r.data).toMatchObject({ code: 552, enhanced: "5.3.4" });
    expect(session.usable).toBe(true);
  });

  it("reports a refused MAIL FROM as a reply error without recipient results", async () => {
    const server = await serve({ onMailFrom: (_a, _s, cb) => cb(rejectWith(553, "5.7.1 Sender rejected")) });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(r).toMatchObject({ ok: false, error: { kind: "reply", command: "MAIL FROM", reply: { code: 553, enhanced: "5.7.1" } }, rcpts: [] });
    expect(session.usable).toBe(true);
  });

  it("refuses without sending when non-ASCII addresses need SMTPUTF8 and it is not offered", async () => {
    let mails = 0;
    const server = await serve({ hideSMTPUTF8: true, onMailFrom: (_a, _s, cb) => (mails++, cb()) });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["jörg@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(r).toMatchObject({ ok: false, error: { kind: "reply", command: "RCPT TO", reply: { code: 553, enhanced: "5.6.7", synthetic: true } }, rcpts: [{ to: "jörg@rcpt.test", accepted: false, reply: { enhanced: "5.6.7" } }] });
    const forced = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("hi\r\n"), smtputf8: true });
    expect(forced).toMatchObject({ ok: false, error: { command: "MAIL FROM", reply: { code: 553, enhanced: "5.6.7", synthetic: true } } });
    const sender = await session.send({ from: "jörg@sender.test", to: ["a@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(sender).toMatchObject({ ok: false, error: { command: "MAIL FROM", reply: { enhanced: "5.6.7" } } });
    expect(mails).toBe(0);
  });

  it("without SMTPUTF8 refuses only the recipients whose own address is UTF-8, and sends to the others", async () => {
    const server = await serve({ hideSMTPUTF8: true });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test", "jörg@rcpt.test", "b@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(r).toMatchObject({ ok: true, data: { code: 250 } });
    if (!r.ok) return;
    expect(r.rcpts.map((x) => [x.to, x.accepted])).toEqual([["a@rcpt.test", true], ["jörg@rcpt.test", false], ["b@rcpt.test", true]]);
    expect(r.rcpts[1]!.reply).toMatchObject({ code: 553, enhanced: "5.6.7", synthetic: true });
    expect(server.received.map((m) => m.to)).toEqual([["a@rcpt.test", "b@rcpt.test"]]);
  });

  it("sends SMTPUTF8 and BODY=8BITMIME when they are needed and offered", async () => {
    const server = await serve();
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["jörg@rcpt.test"], data: Buffer.from("Subject: héllo\r\n\r\nçà\r\n", "utf8") });
    expect(r.ok).toBe(true);
    expect(server.received[0]?.to).toEqual(["jörg@rcpt.test"]);
    expect(server.received[0]?.mailArgs).toMatchObject({ SMTPUTF8: true, BODY: "8BITMIME" });
    expect(server.received[0]?.data.toString("utf8")).toBe("Subject: héllo\r\n\r\nçà\r\n");
  });

  it("refuses an 8-bit body with a synthetic 554 5.6.3 when 8BITMIME is not offered", async () => {
    const server = await serve({ hide8BITMIME: true });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("caf\xe9\r\n", "latin1") });
    expect(r).toMatchObject({ ok: false, error: { kind: "reply", reply: { code: 554, enhanced: "5.6.3", synthetic: true } } });
    expect(server.received).toHaveLength(0);
  });

  it("refuses a message larger than the advertised SIZE before MAIL and announces SIZE otherwise", async () => {
    let mails = 0;
    const server = await serve({ size: 1000, onMailFrom: (_a, _s, cb) => (mails++, cb()) });
    const session = await open(server.port);
    expect(session.extensions.get("SIZE")).toBe("1000");
    const big = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.alloc(2000, "a") });
    expect(big).toMatchObject({ ok: false, error: { kind: "reply", command: "MAIL FROM", reply: { code: 552, enhanced: "5.3.4", synthetic: true } } });
    expect(mails).toBe(0);
    const small = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("small\r\n") });
    expect(small.ok).toBe(true);
    expect(server.received[0]?.mailArgs).toMatchObject({ SIZE: "7" });
  });

  it.each([
    ["pipelined ahead of MAIL", false],
    ["on its own without PIPELINING", true],
  ])("runs two transactions on one connection with RSET between them (%s)", async (_how, hidePIPELINING) => {
    const server = await serve({ hidePIPELINING });
    const session = await open(server.port);
    expect(session.extensions.has("PIPELINING")).toBe(!hidePIPELINING);
    const encoded = encodeData(Buffer.from("same body\r\n"));
    if (!encoded.ok) throw new Error("encode");
    const first = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: encoded.message });
    const second = await session.send({ from: "", to: ["b@rcpt.test"], data: encoded.message }, { reset: true });
    expect(first.ok && second.ok).toBe(true);
    expect(server.connections()).toBe(1);
    expect(server.received.map((m) => [m.from, m.to])).toEqual([
      ["s@sender.test", ["a@rcpt.test"]],
      ["", ["b@rcpt.test"]],
    ]);
    await session.quit();
  });

  it("delivers a 5 MB message intact", async () => {
    const server = await serve();
    const session = await open(server.port);
    const line = ".0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n";
    const message = Buffer.from(line.repeat(Math.ceil((5 * 1024 * 1024) / line.length)));
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: message });
    expect(r.ok && r.data?.code).toBe(250);
    expect(server.received[0]?.data.equals(message)).toBe(true);
  });

  it("refuses addresses that would smuggle commands or parameters, and sends the rest", async () => {
    const server = await serve();
    const session = await open(server.port);
    const evil = ["x@rcpt.test>\r\nRCPT TO:<evil@attacker.test", "y@rcpt.test> NOTIFY=NEVER", "z@rcpt.test\0", "<w@rcpt.test>"];
    const r = await session.send({ from: "s@sender.test", to: ["ok@rcpt.test", ...evil], data: Buffer.from("hi\r\n") });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rcpts.map((x) => [x.accepted, x.reply.code, x.reply.synthetic ?? false])).toEqual([
      [true, 250, false],
      ...evil.map(() => [false, 553, true]),
    ]);
    expect(server.received[0]?.to).toEqual(["ok@rcpt.test"]);

    const badFrom = await session.send({ from: "s@sender.test> SIZE=1", to: ["ok@rcpt.test"], data: Buffer.from("hi\r\n") });
    expect(badFrom).toMatchObject({ ok: false, error: { kind: "reply", reply: { code: 553, enhanced: "5.1.7" } } });
    expect(server.received).toHaveLength(1);
  });

  it("refuses a message with a NUL octet with a synthetic 554 5.6.0 and sends nothing", async () => {
    let mails = 0;
    const server = await serve({ onMailFrom: (_a, _s, cb) => (mails++, cb()) });
    const session = await open(server.port);
    const r = await session.send({ from: "s@sender.test", to: ["a@rcpt.test"], data: Buffer.from("a\0b\r\n") });
    expect(r).toMatchObject({ ok: false, error: { kind: "reply", command: "DATA", reply: { code: 554, enhanced: "5.6.0", synthetic: true } } });
    expect(mails).toBe(0);
    expect(session.usable).toBe(true);
  });

  it("refuses a HELO name with CR or LF and a host that is not an IP literal before connecting", async () => {
    const server = await serve();
    const bad = await openSession({ host: "127.0.0.1", port: server.port, heloName: "me\r\nMAIL FROM:<x@y>", tls: "none" });
    expect(bad).toMatchObject({ ok: false, error: { kind: "refused", command: "EHLO" } });
    const named = await openSession({ host: "localhost", port: server.port, heloName: "me.test", tls: "none" });
    expect(named).toMatchObject({ ok: false, error: { kind: "refused", command: "CONNECT" } });
    expect(server.connections()).toBe(0);
  });

  it("reports a refused connection as a connect error", async () => {
    const server = await serve();
    const port = server.port;
    await server.close();
    servers = [];
    const r = await openSession({ host: "127.0.0.1", port, heloName: "me.test", tls: "none", timeouts: FAST });
    expect(r).toMatchObject({ ok: false, error: { kind: "connect", command: "CONNECT" } });
  });
});
