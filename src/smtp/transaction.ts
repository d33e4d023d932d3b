/**
 * One mail transaction on an open channel: MAIL, RCPT…, DATA, message, "." (RFC 5321 §3.3).
 *
 * Everything that can be refused without the server is refused before a byte is sent, with a
 * synthetic reply the caller classifies like a server's: SIZE exceeded 552 5.3.4 (RFC 1870),
 * 8-bit body without 8BITMIME 554 5.6.3 (RFC 6152), non-ASCII without SMTPUTF8 553 5.6.7
 * (RFC 6531), NUL in the message 554 5.6.0, unsafe or over-long sender 553 5.1.7, recipient
 * 553 5.1.3 (that recipient only).
 *
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one write — after an RSET
 * ending the previous transaction, when asked — and the replies are matched in order by the
 * channel's FIFO; without it, one command at a time.
 */
import type { Channel, ReplyOutcome } from "./channel.js";
import {
  addressProblem,
  isAscii,
  lineOctets,
  mailLine,
  MAX_COMMAND_LINE,
  rcptLine,
  sizeLimit,
} from "./commands.js";
import { encodeData, isEncodedMessage, type EncodedMessage } from "./data.js";
import { syntheticReply, type Reply } from "./reply.js";
import type { SmtpError, SmtpTimeouts } from "./types.js";

export interface Transaction {
  /** Envelope sender; "" sends the null reverse-path `<>` (bounces). */
  from: string;
  to: string[];
  /**
   * The message: raw RFC 5322 bytes (encoded here: line ends normalised, NUL refused,
   * dot-stuffed), or the result of `encodeData` to encode once for several transactions.
   */
  data: Buffer | EncodedMessage;
  /** Force SMTPUTF8 (e.g. UTF-8 in headers); implied by any non-ASCII address. */
  smtputf8?: boolean;
}

export interface RecipientResult {
  to: string;
  /** The RCPT reply (synthetic 553 5.1.3 if the address was refused locally and never sent). */
  reply: Reply;
  /** 2xx to RCPT: the DATA reply decides this recipient. */
  accepted: boolean;
}

/**
 * ok: the server gave a final answer for every recipient: its RCPT reply, and for accepted ones
 * `data`, the reply after the final "." (any code: a 552 there is a value, not a failure).
 * `data` is null when no recipient was accepted.
 * Not ok: the transaction broke off (MAIL or the DATA command refused, a local refusal, timeout,
 * drop); `rcpts` holds what was learned before, and recipients without a rejection there share
 * `error`.
 */
export type TransactionResult =
  | { ok: true; mail: Reply; rcpts: RecipientResult[]; data: Reply | null }
  | { ok: false; error: SmtpError; mail?: Reply; rcpts: RecipientResult[] };

export interface TransactionContext {
  ch: Channel;
  extensions: ReadonlyMap<string, string>;
  timeouts: SmtpTimeouts;
  /**
   * End the previous transaction first with an RSET pipelined ahead of MAIL (needs
   * PIPELINING; RFC 2920 §3.1 lets RSET appear anywhere in a group). Anything but 250 to it
   * ends the transaction before MAIL counts: `error.command` is "RSET" and nothing was taken.
   */
  reset?: boolean;
}

const is2xx = (r: Reply) => r.code >= 200 && r.code < 300;

/** Runs one transaction. The caller has reset any earlier, unfinished transaction, or asks for it with `reset`. */
export async function runTransaction(ctx: TransactionContext, tx: Transaction): Promise<TransactionResult> {
  const { ch, extensions: ext, timeouts: t } = ctx;
  const refuse = (code: number, enhanced: string, text: string, command = "MAIL FROM", rcpts: RecipientResult[] = []) => {
    const reply = syntheticReply(code, enhanced, text);
    return { ok: false as const, error: { kind: "reply" as const, command, message: `not sent: ${text}`, reply }, rcpts };
  };

  const encoded = encode(tx.data);
  if (!encoded.ok) return refuse(554, "5.6.0", encoded.reason, "DATA");
  const msg = encoded.message;

  const fromProblem = addressProblem(tx.from, true);
  if (fromProblem) return refuse(553, "5.1.7", `bad sender address: ${fromProblem}`);
  if (tx.to.length === 0) return { ok: false, error: { kind: "refused", command: "RCPT TO", message: "no recipients" }, rcpts: [] };

  // RFC 6531: a UTF-8 message or sender needs SMTPUTF8 for the whole transaction; a recipient
  // whose own address is UTF-8 needs it only for itself, so without it that recipient alone is
  // refused (5.6.7, below) and the others still go.
  const utf8Rcpts = tx.to.some((a) => !isAscii(a));
  const utf8Message = Boolean(tx.smtputf8) || !isAscii(tx.from);
  const offered = ext.has("SMTPUTF8");
  if (utf8Message && !offered) return refuse(553, "5.6.7", "non-ASCII address or header needs SMTPUTF8, not offered");
  const smtputf8 = offered && (utf8Message || utf8Rcpts);
  if (msg.eightBit && !ext.has("8BITMIME")) return refuse(554, "5.6.3", "8-bit message body needs 8BITMIME, not offered");
  const limit = sizeLimit(ext);
  if (limit && msg.size > limit) return refuse(552, "5.3.4", `message of ${msg.size} octets exceeds the server's SIZE ${limit}`);

  const mail = mailLine(tx.from, { size: limit === null ? null : msg.size, eightBit: msg.eightBit && ext.has("8BITMIME"), smtputf8 });
  if (lineOctets(mail) > MAX_COMMAND_LINE) return refuse(553, "5.1.7", "MAIL FROM command line longer than 512 octets");

  // Recipients refused locally get their synthetic reply now and are never sent.
  const rcpts: (RecipientResult | null)[] = tx.to.map((to) => {
    if (!offered && !isAscii(to)) return { to, reply: syntheticReply(553, "5.6.7", "non-ASCII recipient address needs SMTPUTF8, not offered"), accepted: false };
    const problem = addressProblem(to, false) ?? (lineOctets(rcptLine(to)) > MAX_COMMAND_LINE ? "RCPT TO command line longer than 512 octets" : null);
    return problem ? { to, reply: syntheticReply(553, "5.1.3", `bad recipient address: ${problem}`), accepted: false } : null;
  });
  const toSend = tx.to.filter((_, i) => rcpts[i] === null);
  if (toSend.length === 0) {
    const only = (rcpts as RecipientResult[]).every((r) => r.reply.enhanced === "5.6.7");
    return only
      ? refuse(553, "5.6.7", "non-ASCII recipient address needs SMTPUTF8, not offered", "RCPT TO", rcpts as RecipientResult[])
      : refuse(553, "5.1.3", "no valid recipient address", "RCPT TO", rcpts as RecipientResult[]);
  }

  const learned = (): RecipientResult[] => rcpts.filter((r): r is RecipientResult => r !== null);
  const fill = (replies: ReplyOutcome[]): SmtpError | null => {
    let k = 0;
    for (let i = 0; i < rcpts.length; i++) {
      if (rcpts[i] !== null) continue;
      const r = replies[k++];
      if (!r) break;
      if (!r.ok) return r.error;
      rcpts[i] = { to: tx.to[i]!, reply: r.reply, accepted: is2xx(r.reply) };
    }
    return null;
  };

  const pipelining = ext.has("PIPELINING");
  if (ctx.reset && !pipelining) throw new Error("runTransaction: reset needs PIPELINING; send RSET on its own first");
  let mailOutcome: ReplyOutcome;
  let dataOutcome: ReplyOutcome | null = null;
  if (pipelining) {
    // RFC 2920 §3.1: DATA ends the batch; [RSET,] MAIL, RCPTs and DATA share one write.
    const ps = ctx.reset ? ch.expect("RSET", t.rset) : null;
    const pm = ch.expect("MAIL FROM", t.mail);
    const pr = toSend.map(() => ch.expect("RCPT TO", t.rcpt));
    const pd = ch.expect("DATA", t.dataInit);
    ch.write([...(ps ? ["RSET"] : []), mail, ...toSend.map(rcptLine), "DATA", ""].join("\r\n"));
    if (ps) {
      const rs = await ps.result;
      // RFC 5321 §4.1.1.5: a server MUST answer RSET with 250. Anything else (a warm connection
      // the server closed meanwhile, a 421) leaves the state of what followed unknown: the
      // caller drops the connection, so no data is ever sent after that DATA.
      if (!rs.ok) return { ok: false, error: { ...rs.error, command: "RSET" }, rcpts: [] };
      if (!is2xx(rs.reply)) {
        const error: SmtpError = { kind: "reply", command: "RSET", message: `RSET refused: ${rs.reply.code} ${rs.reply.text}`, reply: rs.reply };
        return { ok: false, error, rcpts: [] };
      }
    }
    mailOutcome = await pm.result;
    const rcptOutcomes = await Promise.all(pr.map((p) => p.result));
    dataOutcome = await pd.result;
    if (!mailOutcome.ok) return { ok: false, error: mailOutcome.error, rcpts: learned() };
    // After a refused MAIL the RCPT replies (503s) say nothing about the recipients: skip them.
    const err = is2xx(mailOutcome.reply) ? fill(rcptOutcomes) : null;
    if (err) return { ok: false, error: err, mail: mailOutcome.reply, rcpts: learned() };
  } else {
    mailOutcome = await ch.command(mail, "MAIL FROM", t.mail);
    if (mailOutcome.ok && is2xx(mailOutcome.reply)) {
      for (const to of toSend) {
        const r = await ch.command(rcptLine(to), "RCPT TO", t.rcpt);
        const err = fill([r]);
        if (err) return { ok: false, error: err, mail: mailOutcome.reply, rcpts: learned() };
      }
    }
    if (!mailOutcome.ok) return { ok: false, error: mailOutcome.error, rcpts: learned() };
  }

  const mailReply = mailOutcome.reply;
  const accepted = learned().some((r) => r.accepted);
  if (!is2xx(mailReply)) {
    // A server that answered DATA with 354 anyway still needs the data ended.
    if (dataOutcome?.ok && dataOutcome.reply.code === 354) await ch.command(".", "DATA", t.dataDone);
    const error: SmtpError = { kind: "reply", command: "MAIL FROM", message: `sender refused: ${mailReply.code} ${mailReply.text}`, reply: mailReply };
    return { ok: false, error, mail: mailReply, rcpts: learned() };
  }
  if (!accepted) {
    // ENGINE-NOTES 11 / RFC 2920 §3.1: DATA was pipelined and got 354 anyway: end it with a lone ".".
    if (dataOutcome?.ok && dataOutcome.reply.code === 354) {
      const end = await ch.command(".", "DATA", t.dataDone);
      if (!end.ok) return { ok: false, error: end.error, mail: mailReply, rcpts: learned() };
    }
    return { ok: true, mail: mailReply, rcpts: learned(), data: null };
  }

  if (!dataOutcome) dataOutcome = await ch.command("DATA", "DATA", t.dataInit);
  if (!dataOutcome.ok) return { ok: false, error: dataOutcome.error, mail: mailReply, rcpts: learned() };
  if (dataOutcome.reply.code !== 354) {
    const r = dataOutcome.reply;
    const error: SmtpError = { kind: "reply", command: "DATA", message: `DATA refused: ${r.code} ${r.text}`, reply: r };
    return { ok: false, error, mail: mailReply, rcpts: learned() };
  }

  // The final reply may come early (a server refusing mid-transfer), so wait for it from the
  // start, but run its timer only once all data is written (RFC 5321 §4.5.3.2 "DATA termination").
  const final = ch.expect("DATA", null);
  if (await ch.writeBulk(msg.data, t.dataBlock, "DATA")) final.arm(t.dataDone);
  const done = await final.result;
  if (!done.ok) return { ok: false, error: done.error, mail: mailReply, rcpts: learned() };
  return { ok: true, mail: mailReply, rcpts: learned(), data: done.reply };
}

function encode(data: Buffer | EncodedMessage): ReturnType<typeof encodeData> {
  if (Buffer.isBuffer(data)) return encodeData(data);
  if (isEncodedMessage(data)) return { ok: true, message: data };
  // Content claiming to be encoded already is never trusted (ENGINE-NOTES "SMTP smuggling").
  throw new TypeError("data must be a Buffer or the result of encodeData()");
}
