/**
 * Which recursive resolvers to ask. `DNS_SERVERS` arrives from src/config.ts as `ip:port` or
 * `[ipv6]:port`; an empty list means the system's resolvers, as `node:dns` reads them from
 * /etc/resolv.conf (`1.2.3.4`, `1.2.3.4:5353`, `2001:db8::1` or `[2001:db8::1]:5353`).
 */
import { getServers } from "node:dns";
import { isIP } from "node:net";
import type { Server } from "./types.js";

const DNS_PORT = 53; // RFC 1035 §4.2

/** Parses `ip`, `ip:port`, a bare IPv6 address or `[ipv6]:port`; null when it is none of them. */
export function parseServer(text: string): Server | null {
  const raw = text.trim();
  let host: string;
  let port = DNS_PORT;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(raw);
  const v4 = /^([^:]+)(?::(\d{1,5}))?$/.exec(raw);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (v4) {
    host = v4[1]!;
    if (v4[2] !== undefined) port = Number(v4[2]);
  } else {
    host = raw; // a bare IPv6 address, as getServers() prints one on port 53
  }
  const family = isIP(host);
  if ((family !== 4 && family !== 6) || port < 1 || port > 65535) return null;
  if (bracketed === null && v4 === null && family !== 6) return null;
  return { host, port, family, label: family === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

/**
 * The servers to use: the configured ones, or the system's when none are configured.
 * A configured entry that does not parse is a bug upstream (config.ts validates them), so it throws.
 */
export function resolveServers(configured: readonly string[], system: () => string[] = getServers): Server[] {
  const list = configured.length > 0 ? configured : system();
  const servers: Server[] = [];
  for (const text of list) {
    const server = parseServer(text);
    if (server === null) {
      if (configured.length > 0) throw new TypeError(`DNS server "${text}" is not ip[:port] or [ipv6]:port`);
      continue; // an odd system entry (e.g. a scoped link-local address) is skipped, not fatal
    }
    servers.push(server);
  }
  return servers;
}
