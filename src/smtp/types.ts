/** Shapes shared by the SMTP client's files. Outcomes are values (CONVENTIONS.md #4). */
import type { Reply } from "./reply.js";

/** Milliseconds to wait for each step (RFC 5321 §4.5.3.2). */
export interface SmtpTimeouts {
  /** TCP connect. */
  connect: number;
  /** The 220 banner. */
  greeting: number;
  /** EHLO / HELO reply. */
  ehlo: number;
  /** STARTTLS reply, and separately the TLS handshake (implicit or after STARTTLS). */
  starttls: number;
  /** Each AUTH step. */
  auth: number;
  mail: number;
  rcpt: number;
  /** The 354 after DATA. */
  dataInit: number;
  /** Each block of message data to drain into the socket. */
  dataBlock: number;
  /** The reply after the final ".". */
  dataDone: number;
  rset: number;
  quit: number;
}

const MIN = 60_000;

/**
 * RFC 5321 §4.5.3.2 minimums (greeting 5 min, MAIL 5, RCPT 5, DATA 2, block 3, "." 10), connect
 * 30 s as Postfix, and short STARTTLS/RSET/QUIT waits as Postfix and KumoMTA.
 */
export const DEFAULT_TIMEOUTS: Readonly<SmtpTimeouts> = Object.freeze({
  connect: 30_000,
  greeting: 5 * MIN,
  ehlo: 5 * MIN,
  starttls: 30_000,
  auth: 30_000,
  mail: 5 * MIN,
  rcpt: 5 * MIN,
  dataInit: 2 * MIN,
  dataBlock: 3 * MIN,
  dataDone: 10 * MIN,
  rset: 20_000,
  quit: 10_000,
});

/**
 * What went wrong, for the caller to classify:
 * - `connect`  TCP connect failed (refused, unreachable)
 * - `timeout`  no reply / no progress within the step's timeout
 * - `tls`      STARTTLS required but missing, handshake failed or stalled, certificate refused,
 *              or credentials refused without TLS; plain-text retry is the caller's decision
 * - `protocol` the server broke the protocol (malformed or over-long reply, unsolicited reply)
 * - `closed`   the server closed the connection (or it was closed locally)
 * - `reply`    the server answered with a failure code (`reply` holds it), or the client refused
 *              before sending and made up a reply (`reply.synthetic`, e.g. 552 5.3.4)
 * - `refused`  a local argument could not be sent safely (bad HELO name, host not an IP literal)
 */
export type SmtpErrorKind = "connect" | "timeout" | "tls" | "protocol" | "closed" | "reply" | "refused";

export interface SmtpError {
  kind: SmtpErrorKind;
  /** The step: "CONNECT", "GREETING", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "RSET", "QUIT". */
  command: string;
  message: string;
  reply?: Reply;
  /** Set when STARTTLS (or implicit TLS) had been attempted on this connection. */
  tlsTried?: boolean;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: SmtpError };

export interface TlsInfo {
  version: string;
  cipher: string;
  /** True when the certificate was verified against the server name. */
  authorized: boolean;
}
