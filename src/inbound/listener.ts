/**
 * The inbound listener (SPEC.md "Delivery rules", issue #5): an SMTP server on `smtp-server`
 * that accepts mail only for verified VERP tokens on RETURN_PATH_DOMAIN — DSNs and feedback
 * reports at `b+<token>@…`, mailto unsubscribes at `u+<token>@…` — and hands each message to
 * src/inbound/process.ts.
 *
 * - RCPT: another domain → 550 5.7.1 (no relaying); a token that does not verify → 550 5.1.1;
 *   `fbl@RETURN_PATH_DOMAIN` (the address to register with feedback loops) is accepted too.
 * - MAIL FROM: anything, the null reverse-path `<>` included (RFC 5321 §4.5.5: bounces use it).
 * - No AUTH; no STARTTLS (reports are not secret, and a certificate would need configuration).
 * - SIZE = maxBytes (RFC 1870): a larger declared SIZE is refused at MAIL; a larger message is
 *   never held — bytes past the limit are drained and dropped, the reply is 552 5.3.4, nothing
 *   is stored. A client that keeps sending past DRAIN_FACTOR × maxBytes is disconnected.
 * - maxClients, an idle socket timeout (RFC 5321 §4.5.3.2.7: at least 5 minutes by default)
 *   and a close timeout. Bytes are stored as received (NUL and bare CR included).
 * - Never crashes: every error becomes an SMTP reply (451 for ours) and a log line without
 *   addresses or bodies.
 */
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { Store } from "../db/client.js";
import { safeError, type Logger } from "../lib/logger.js";
import { parseInbound, type InboundReport } from "./parse.js";
import { feedbackToken, processInbound } from "./process.js";
import { parseVerpAddress, type ParsedVerp } from "./verp.js";

export interface InboundListenerOptions {
  store: Store;
  logger: Logger;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** RETURN_PATH_DOMAIN. */
  domain: string;
  /** The `verp` sub-key of the service secret. */
  key: Buffer;
  /** INBOUND_MAX_BYTES. */
  maxBytes: number;
  /** The greeting and EHLO name (HELO_NAME). */
  name?: string;
  maxClients?: number;
  socketTimeoutMs?: number;
  closeTimeoutMs?: number;
  now?: () => Date;
}

export interface InboundListener {
  /** The port actually bound. */
  readonly port: number;
  /** Stops accepting, waits for messages being processed, closes connections. */
  close(): Promise<void>;
}

const DRAIN_FACTOR = 8;

/**
 * The fixed address to register with mailbox providers' feedback loops (they report to one
 * address, not to each message's VERP sender): `fbl@RETURN_PATH_DOMAIN`. Reports to it are
 * matched through the reported message's envelope sender (process.ts feedbackToken).
 */
export const FEEDBACK_LOCAL_PART = "fbl";

const reply = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

/** Starts the listener; resolves once it is bound. */
export async function startInboundListener(o: InboundListenerOptions): Promise<InboundListener> {
  const log = o.logger.child({ component: "inbound" });
  const now = o.now ?? (() => new Date());
  const inflight = new Set<Promise<unknown>>();

  const server: SMTPServer = new SMTPServer({
    name: o.name,
    banner: "Postline bounce and feedback listener",
    logger: false,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    authOptional: true,
    disableReverseLookup: true,
    size: o.maxBytes,
    rejectOversized: true,
    maxClients: o.maxClients ?? 100,
    maxRecipients: 10,
    socketTimeout: o.socketTimeoutMs ?? 5 * 60_000,
    closeTimeout: o.closeTimeoutMs ?? 5_000,
    onMailFrom(_address, _session, cb) {
      cb(); // the null reverse-path included: that is how bounces arrive
    },
    onRcptTo(address, session, cb) {
      const v = parseVerpAddress(o.key, address.address, o.domain);
      if (v.ok || isFeedbackAddress(address.address)) return cb();
      log.debug({ session: session.id, reason: v.reason }, "inbound recipient refused");
      if (v.reason === "not the return-path domain" || v.reason === "not an address") {
        return cb(reply(550, `5.7.1 Relaying denied: this server accepts mail only for ${o.domain}`));
      }
      cb(reply(550, "5.1.1 No such return-path address here"));
    },
    onData(stream, session, cb) {
      const job = receive(stream, session).then(
        (message) => cb(null, message),
        (err: unknown) => {
          if ((err as { responseCode?: number }).responseCode) return cb(err as Error);
          if ((err as { code?: string }).code === "ECONNECTION") return cb(err as Error); // the client went away mid-DATA
          log.error({ err: safeError(err), session: session.id }, "inbound message not processed");
          cb(reply(451, "4.3.0 Temporary failure, try again later"));
        },
      );
      inflight.add(job);
      void job.finally(() => inflight.delete(job));
    },
  });
  server.on("error", (err) => {
    // Clients resetting or timing out are routine on an Internet-facing port.
    const routine = ["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNECTION"].includes((err as { code?: string }).code ?? "");
    log[routine ? "debug" : "warn"]({ err: safeError(err) }, "inbound connection error");
  });

  const isFeedbackAddress = (address: string) => address.toLowerCase() === `${FEEDBACK_LOCAL_PART}@${o.domain.toLowerCase()}`;

  /** Reads the message within the limit, then processes it once per verified recipient. */
  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const chunks: Buffer[] = [];
    let held = 0;
    await new Promise<void>((resolve, reject) => {
      stream.on("data", (chunk: Buffer) => {
        if (stream.sizeExceeded) {
          chunks.length = 0; // the hard cut-off: nothing over the limit is held
          if (stream.byteLength > o.maxBytes * DRAIN_FACTOR) for (const c of server.connections) if (c.id === session.id) c.close();
          return;
        }
        chunks.push(chunk);
        held += chunk.length;
      });
      stream.once("end", resolve);
      stream.once("error", reject);
    });
    if (stream.sizeExceeded || held > o.maxBytes) throw reply(552, `5.3.4 Message exceeds the maximum size of ${o.maxBytes} octets`);
    const raw = Buffer.concat(chunks, held);
    const remoteIp = session.remoteAddress ?? null;
    const mailFrom = (session.envelope.mailFrom ? session.envelope.mailFrom.address : "").replace(/\0/g, "");
    const ids: string[] = [];
    let retry = false;
    for (const rcpt of session.envelope.rcptTo) {
      const env = { remoteIp, mailFrom, rcptTo: rcpt.address.toLowerCase() };
      let token: ParsedVerp | null = parseVerpAddress(o.key, rcpt.address, o.domain);
      let report: InboundReport | undefined;
      if (!token.ok) {
        if (!isFeedbackAddress(rcpt.address)) continue; // refused at RCPT already
        // The feedback-loop address: the token comes from the report about our message.
        report = parseInbound(raw);
        token = feedbackToken(report, (a) => parseVerpAddress(o.key, a, o.domain));
      }
      const done = await processInbound(o.store, env, token, raw, now(), report);
      log.info({ inbound: done.id, kind: done.kind, outcome: done.outcome, size: raw.length, recipient: token?.recipientId ?? null }, "inbound message");
      ids.push(done.id);
      retry ||= done.retry;
    }
    // A report that came before our own outcome for its recipient was recorded: again later.
    if (retry) throw reply(451, "4.3.0 The recipient's delivery is still being recorded; try again later");
    return `2.0.0 Accepted ${ids.join(" ")}`.trim();
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(o.port, o.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  log.info({ host: o.host, port, domain: o.domain }, "inbound listening");

  return {
    port,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([...inflight]);
    },
  };
}
