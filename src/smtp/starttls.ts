/**
 * The TLS side of a session: options for implicit TLS and STARTTLS, and the STARTTLS upgrade
 * (RFC 3207). The handshake has its own timeout — a stalled handshake must not hang the
 * delivery and must say `kind: "tls"` so the caller can retry that host in plain text
 * (KumoMTA #577).
 */
import net from "node:net";
import tls from "node:tls";
import type { Channel } from "./channel.js";
import type { Outcome, SmtpError, TlsInfo } from "./types.js";

export interface TlsTarget {
  host: string;
  serverName?: string;
  tls: "opportunistic" | "required" | "none";
  ca?: string | Buffer;
}

/** Options shared by implicit TLS and STARTTLS; never a host name to resolve. */
export function tlsOptions(target: TlsTarget): tls.ConnectionOptions {
  const name = target.serverName ?? target.host;
  return {
    // RFC 6066 §3: SNI carries host names only, never IP literals.
    ...(net.isIP(name) === 0 ? { servername: name } : {}),
    // Opportunistic TLS (RFC 7435) takes any certificate; "required" checks it against the MX name.
    rejectUnauthorized: target.tls === "required",
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    ...(target.ca ? { ca: target.ca } : {}),
  };
}

export function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  return {
    version: socket.getProtocol() ?? "unknown",
    cipher: socket.getCipher()?.name ?? "unknown",
    authorized: socket.authorized,
  };
}

/**
 * Runs the handshake on the channel's socket after a 220 to STARTTLS. The channel stopped
 * reading at that 220 and forgot every byte after it (RFC 3207 §4.2, response injection); on
 * success it continues on the TLS socket with an empty buffer.
 */
export function startTls(ch: Channel, target: TlsTarget, timeoutMs: number): Promise<Outcome<TlsInfo>> {
  const plain = ch.detach();
  return new Promise((resolve) => {
    const secure = tls.connect({ socket: plain, ...tlsOptions(target) });
    const finish = (error: SmtpError | null) => {
      clearTimeout(timer);
      secure.off("error", onError);
      secure.off("close", onClose);
      if (error) {
        secure.destroy();
        plain.destroy();
        ch.fail(error);
        resolve({ ok: false, error: ch.dead ?? error });
      } else {
        ch.attach(secure);
        resolve({ ok: true, value: tlsInfo(secure) });
      }
    };
    const fail = (message: string) => finish({ kind: "tls", command: "STARTTLS", message, tlsTried: true });
    const onError = (err: Error) => fail(`TLS handshake failed: ${err.message}`);
    const onClose = () => fail("connection closed during the TLS handshake");
    const timer = setTimeout(() => fail(`TLS handshake not done within ${timeoutMs} ms`), timeoutMs);
    secure.on("error", () => {}); // the channel takes over error handling once attached
    secure.on("error", onError);
    secure.on("close", onClose);
    secure.once("secureConnect", () => finish(null));
  });
}
