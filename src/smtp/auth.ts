/**
 * SMTP AUTH (RFC 4954) for a smarthost: PLAIN (RFC 4616) preferred, LOGIN as fallback. The
 * caller guarantees TLS is up; credentials never appear in errors or logs.
 */
import type { Channel, ReplyOutcome } from "./channel.js";
import type { Outcome, SmtpError } from "./types.js";

export interface Credentials {
  user: string;
  pass: string;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** Authenticates on `ch`; `{ ok: true }` after a 235. */
export async function authenticate(
  ch: Channel,
  extensions: ReadonlyMap<string, string>,
  creds: Credentials,
  timeoutMs: number,
): Promise<Outcome<void>> {
  const mechanisms = new Set((extensions.get("AUTH") ?? "").toUpperCase().split(/\s+/).filter(Boolean));
  if (creds.user.includes("\0") || creds.pass.includes("\0")) {
    return { ok: false, error: { kind: "refused", command: "AUTH", message: "credentials contain a NUL character" } };
  }
  let r: ReplyOutcome;
  if (mechanisms.has("PLAIN")) {
    const token = b64(`\0${creds.user}\0${creds.pass}`);
    r = await ch.command(`AUTH PLAIN ${token}`, "AUTH", timeoutMs);
    // RFC 4954 §4: a server may still ask with an empty 334 challenge.
    if (r.ok && r.reply.code === 334) r = await ch.command(token, "AUTH", timeoutMs);
  } else if (mechanisms.has("LOGIN")) {
    r = await ch.command("AUTH LOGIN", "AUTH", timeoutMs);
    if (r.ok && r.reply.code === 334) r = await ch.command(b64(creds.user), "AUTH", timeoutMs);
    if (r.ok && r.reply.code === 334) r = await ch.command(b64(creds.pass), "AUTH", timeoutMs);
  } else {
    const offered = mechanisms.size ? [...mechanisms].join(" ") : "none";
    return { ok: false, error: fail("protocol", `server offers no supported AUTH mechanism (PLAIN, LOGIN); offered: ${offered}`) };
  }
  if (!r.ok) return r;
  if (r.reply.code === 235) return { ok: true, value: undefined };
  if (r.reply.code === 334) {
    await ch.command("*", "AUTH", timeoutMs); // RFC 4954 §4: cancel an exchange we cannot continue
    return { ok: false, error: { ...fail("protocol", "server kept asking for more AUTH data"), reply: r.reply } };
  }
  return { ok: false, error: { ...fail("reply", `authentication failed: ${r.reply.code} ${r.reply.text}`), reply: r.reply } };
}

function fail(kind: SmtpError["kind"], message: string): SmtpError {
  return { kind, command: "AUTH", message };
}
