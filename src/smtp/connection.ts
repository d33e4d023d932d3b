/**
 * Opening an SMTP session to one IP address and running transactions on it.
 *
 *   connect (plain, or implicit TLS for port 465)
 *   → 220 greeting (anything else: error "reply", QUIT politely)
 *   → EHLO (HELO when EHLO gets a 5xx)
 *   → STARTTLS when offered and wanted (RFC 3207), then EHLO again with everything learned
 *     before TLS forgotten (§4.2; KumoMTA #61)
 *   → AUTH PLAIN/LOGIN, only ever over TLS
 *   → transactions (`send`), RSET between them, QUIT.
 *
 * Names are never resolved here: `host` is the IP literal the caller's destination guard checked.
 * Every failure is an `SmtpError` value; socket errors never escape as exceptions.
 */
import net from "node:net";
import tls from "node:tls";
import { authenticate, type Credentials } from "./auth.js";
import { Channel } from "./channel.js";
import { heloNameProblem, parseExtensions } from "./commands.js";
import type { Reply } from "./reply.js";
import { startTls, tlsInfo, tlsOptions } from "./starttls.js";
import { runTransaction, type Transaction, type TransactionResult } from "./transaction.js";
import { DEFAULT_TIMEOUTS, type Outcome, type SmtpError, type SmtpTimeouts, type TlsInfo } from "./types.js";

export type { SmtpError, SmtpErrorKind, SmtpTimeouts, TlsInfo } from "./types.js";
export type { RecipientResult, Transaction, TransactionResult } from "./transaction.js";
export type { Reply } from "./reply.js";
export { DEFAULT_TIMEOUTS };

export interface SessionOptions {
  /** IP literal to connect to; host names are refused (resolve and guard them first). */
  host: string;
  port: number;
  /** The MX host name: SNI and, with tls "required", the name the certificate must match. */
  serverName?: string;
  /** Our EHLO name. */
  heloName: string;
  /**
   * opportunistic: STARTTLS when offered, certificate not checked (RFC 7435), plain otherwise.
   * required: STARTTLS must be offered and the certificate verified against serverName (MTA-STS
   * enforce). none: never STARTTLS. With implicitTls, "required" verifies and the others do not.
   */
  tls: "opportunistic" | "required" | "none";
  /** TLS from the first byte (port 465, RFC 8314). */
  implicitTls?: boolean;
  /** AUTH PLAIN or LOGIN; refused unless the connection is TLS. */
  auth?: Credentials;
  timeouts?: Partial<SmtpTimeouts>;
  /** Trusted CA certificates for verification (tests, private smarthosts). */
  ca?: string | Buffer;
}

export type SessionResult = { ok: true; session: SmtpSession } | { ok: false; error: SmtpError };

export interface SmtpSession {
  /** EHLO keywords (upper case) → parameters, from the last EHLO; empty after HELO. */
  readonly extensions: ReadonlyMap<string, string>;
  /** "EHLO", or "HELO" after the fallback. */
  readonly hello: "EHLO" | "HELO";
  readonly tls: TlsInfo | null;
  readonly remote: { ip: string; port: number; greeting: string };
  /** False once the connection failed, closed or quit. */
  readonly usable: boolean;
  /**
   * Runs one transaction; sends RSET first if an earlier one was left open, or always with
   * `reset` (a warm connection taken from a pool). With PIPELINING that RSET goes in the same
   * write as MAIL, RCPT and DATA. When the RSET gets no 250 the connection is closed and the
   * result's `error.command` is "RSET": nothing of this transaction was taken, so it may be
   * sent again on a fresh connection.
   */
  send(tx: Transaction, opts?: { reset?: boolean }): Promise<TransactionResult>;
  /** QUIT, wait briefly for 221, close. Never throws. */
  quit(): Promise<void>;
  /** Closes at once. */
  close(): void;
}

/** Connects, greets, negotiates TLS and AUTH; returns a session ready for `send`. */
export async function openSession(opts: SessionOptions): Promise<SessionResult> {
  const t: SmtpTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const refused = (command: string, message: string, kind: SmtpError["kind"] = "refused"): SessionResult => ({
    ok: false,
    error: { kind, command, message },
  });
  if (net.isIP(opts.host) === 0) return refused("CONNECT", `host must be an IP address literal, got ${JSON.stringify(opts.host)}`);
  const heloProblem = heloNameProblem(opts.heloName);
  if (heloProblem) return refused("EHLO", heloProblem);
  if (opts.auth && opts.tls === "none" && !opts.implicitTls) {
    return refused("AUTH", "refusing to send credentials without TLS", "tls");
  }

  const connected = await connect(opts, t);
  if (!connected.ok) return connected;
  const ch = new Channel(connected.value.socket);
  let tlsState = connected.value.tls;
  ch.tlsTried = tlsState !== null;

  const greeting = await ch.expect("GREETING", t.greeting).result;
  if (!greeting.ok) return { ok: false, error: greeting.error };
  if (greeting.reply.code !== 220) {
    return abandon(ch, t, replyError("GREETING", greeting.reply, "server refused the session"));
  }

  let hello = await sayHello(ch, opts.heloName, t);
  if (!hello.ok) return abandon(ch, t, hello.error);

  if (tlsState === null && opts.tls !== "none") {
    if (!hello.value.extensions.has("STARTTLS")) {
      if (opts.tls === "required") {
        return abandon(ch, t, { kind: "tls", command: "STARTTLS", message: "TLS is required but the server does not offer STARTTLS" });
      }
    } else {
      const r = await ch.command("STARTTLS", "STARTTLS", t.starttls, true);
      if (!r.ok) return { ok: false, error: r.error };
      if (r.reply.code !== 220) {
        // RFC 3207 §4: e.g. 454; opportunistic TLS carries on in plain text.
        if (opts.tls === "required") return abandon(ch, t, { ...replyError("STARTTLS", r.reply, "STARTTLS refused"), kind: "tls" });
      } else {
        ch.tlsTried = true;
        const up = await startTls(ch, opts, t.starttls);
        if (!up.ok) return up;
        tlsState = up.value;
        hello = await sayHello(ch, opts.heloName, t); // RFC 3207 §4.2: forget and ask again
        if (!hello.ok) return abandon(ch, t, hello.error);
      }
    }
  }

  if (opts.auth) {
    if (tlsState === null) {
      return abandon(ch, t, { kind: "tls", command: "AUTH", message: "refusing to send credentials without TLS" });
    }
    const a = await authenticate(ch, hello.value.extensions, opts.auth, t.auth);
    if (!a.ok) return abandon(ch, t, a.error);
  }

  const remote = { ip: opts.host, port: opts.port, greeting: greeting.reply.text };
  return { ok: true, session: new Session(ch, t, hello.value.extensions, hello.value.verb, tlsState, remote) };
}

class Session implements SmtpSession {
  private busy = false;
  /** A MAIL was sent and its transaction not ended by the reply to ".": RSET before the next. */
  private open = false;
  private quitting = false;

  constructor(
    private readonly ch: Channel,
    private readonly t: SmtpTimeouts,
    readonly extensions: ReadonlyMap<string, string>,
    readonly hello: "EHLO" | "HELO",
    readonly tls: TlsInfo | null,
    readonly remote: { ip: string; port: number; greeting: string },
  ) {}

  get usable(): boolean {
    return !this.ch.dead && !this.quitting;
  }

  async send(tx: Transaction, opts: { reset?: boolean } = {}): Promise<TransactionResult> {
    return this.exclusive(async () => {
      if (!this.usable) return { ok: false, error: this.deadError(opts.reset ? "RSET" : "MAIL FROM"), rcpts: [] };
      const reset = this.open || Boolean(opts.reset);
      const pipelined = reset && this.extensions.has("PIPELINING");
      if (reset && !pipelined && !(await this.rset())) {
        this.ch.close("RSET refused");
        return { ok: false, error: { ...(this.ch.dead ?? { kind: "protocol", message: "RSET refused" }), command: "RSET" }, rcpts: [] };
      }
      this.open = true;
      const result = await runTransaction({ ch: this.ch, extensions: this.extensions, timeouts: this.t, reset: pipelined }, tx);
      if (!result.ok && result.error.command === "RSET") this.ch.close("RSET refused");
      // The reply to the final "." ends the transaction whatever its code (RFC 5321 §4.1.1.4).
      if (result.ok && result.data) this.open = false;
      return result;
    });
  }

  async quit(): Promise<void> {
    if (this.quitting || this.ch.dead) return this.close();
    this.quitting = true;
    await this.ch.command("QUIT", "QUIT", this.t.quit);
    this.ch.close("closed after QUIT");
  }

  close(): void {
    this.quitting = true;
    this.ch.close();
  }

  private async rset(): Promise<boolean> {
    if (!this.usable) return false;
    const r = await this.ch.command("RSET", "RSET", this.t.rset);
    const ok = r.ok && r.reply.code >= 200 && r.reply.code < 300;
    if (ok) this.open = false;
    return ok;
  }

  private deadError(command: string): SmtpError {
    return this.ch.dead ?? { kind: "closed", command, message: "session was closed" };
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    // A session is a conversation: overlapping calls are a bug in the caller.
    if (this.busy) throw new Error("SmtpSession: one operation at a time (await the previous send/reset)");
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }
}

/** EHLO, or HELO when EHLO is refused with a 5xx (RFC 5321 §4.1.4). */
async function sayHello(
  ch: Channel,
  name: string,
  t: SmtpTimeouts,
): Promise<Outcome<{ extensions: Map<string, string>; verb: "EHLO" | "HELO" }>> {
  const ehlo = await ch.command(`EHLO ${name}`, "EHLO", t.ehlo);
  if (!ehlo.ok) return ehlo;
  if (ehlo.reply.code === 250) return { ok: true, value: { extensions: parseExtensions(ehlo.reply), verb: "EHLO" } };
  if (ehlo.reply.code < 500) return { ok: false, error: replyError("EHLO", ehlo.reply, "EHLO refused") };
  const helo = await ch.command(`HELO ${name}`, "HELO", t.ehlo);
  if (!helo.ok) return helo;
  if (helo.reply.code === 250) return { ok: true, value: { extensions: new Map(), verb: "HELO" } };
  return { ok: false, error: replyError("HELO", helo.reply, "HELO refused") };
}

function replyError(command: string, reply: Reply, what: string): SmtpError {
  return { kind: "reply", command, message: `${what}: ${reply.code} ${reply.text}`, reply };
}

/** After a refusal the polite thing is QUIT (RFC 5321 §3.1); other failures just close. */
async function abandon(ch: Channel, t: SmtpTimeouts, error: SmtpError): Promise<SessionResult> {
  const err = ch.tlsTried ? { ...error, tlsTried: true } : error;
  if (!ch.dead && (error.kind === "reply" || error.kind === "tls" || error.kind === "protocol")) {
    await ch.command("QUIT", "QUIT", t.quit);
  }
  ch.close();
  return { ok: false, error: err };
}

/** TCP connect (plus the handshake for implicit TLS), each with its own timeout. */
function connect(opts: SessionOptions, t: SmtpTimeouts): Promise<Outcome<{ socket: net.Socket; tls: TlsInfo | null }>> {
  return new Promise((resolve) => {
    const socket: net.Socket = opts.implicitTls
      ? tls.connect({ host: opts.host, port: opts.port, ...tlsOptions(opts) })
      : net.connect({ host: opts.host, port: opts.port });
    let stage: "CONNECT" | "TLS" = "CONNECT";
    let timer = setTimeout(() => finish(errorFor("timeout", `no TCP connection within ${t.connect} ms`)), t.connect);
    const errorFor = (kind: SmtpError["kind"], message: string): SmtpError =>
      stage === "TLS"
        ? { kind: "tls", command: "CONNECT", message, tlsTried: true }
        : { kind, command: "CONNECT", message };
    const finish = (error: SmtpError | null) => {
      clearTimeout(timer);
      socket.off("error", onError);
      socket.off("close", onClose);
      if (error) {
        socket.destroy();
        resolve({ ok: false, error });
      } else {
        resolve({ ok: true, value: { socket, tls: opts.implicitTls ? tlsInfo(socket as tls.TLSSocket) : null } });
      }
    };
    const onError = (err: Error) => finish(errorFor("connect", `${stage === "TLS" ? "TLS handshake" : "connect"} failed: ${err.message}`));
    const onClose = () => finish(errorFor("connect", "connection closed before it was established"));
    socket.on("error", () => {}); // keep later errors from going uncaught; the channel listens too
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.once("connect", () => {
      if (!opts.implicitTls) return finish(null);
      stage = "TLS";
      clearTimeout(timer);
      timer = setTimeout(() => finish(errorFor("tls", `TLS handshake not done within ${t.starttls} ms`)), t.starttls);
      socket.once("secureConnect", () => finish(null));
    });
  });
}
