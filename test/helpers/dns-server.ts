/**
 * A small authoritative DNS responder for tests, on UDP and TCP at the same port of 127.0.0.1
 * (or ::1). Answers from an in-memory zone that a test can swap; records what it was asked.
 *
 * - a name absent from the zone → NXDOMAIN; present without the asked type → NODATA
 *   (NOERROR, no answers); both carry an SOA whose TTL and MINIMUM are `negativeTtl`.
 * - CNAME is followed inside the zone, as an authoritative server does (RFC 1034 §4.3.2).
 * - flags per name: SERVFAIL, REFUSED, NXDOMAIN, hang (never answer), truncate (TC on UDP,
 *   full answer on TCP), spoof (first a reply with a wrong id and one for another name, then
 *   the real one), garbage (bytes that are no DNS message).
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server as TcpServer, type Socket } from "node:net";
import * as packet from "dns-packet";
import type { Answer, Packet, Question } from "dns-packet";

type Ttl = { ttl?: number };
export interface ZoneEntry {
  MX?: ({ preference: number; exchange: string } & Ttl)[];
  A?: (string | ({ address: string } & Ttl))[];
  AAAA?: (string | ({ address: string } & Ttl))[];
  TXT?: (string | string[] | ({ data: string | string[] } & Ttl))[];
  CNAME?: string | ({ target: string } & Ttl);
  NXDOMAIN?: true;
  SERVFAIL?: true;
  REFUSED?: true;
  hang?: true;
  truncate?: true;
  spoof?: true;
  garbage?: true;
}
export type Zone = Record<string, ZoneEntry>;

export interface DnsServerOptions {
  host?: "127.0.0.1" | "::1";
  /** TTL and MINIMUM of the SOA sent with NXDOMAIN and NODATA. Default 60. */
  negativeTtl?: number;
}

export interface DnsServer {
  port: number;
  /** `127.0.0.1:PORT` or `[::1]:PORT`, the DNS_SERVERS format. */
  address: string;
  queries: { name: string; type: string; transport: "udp" | "tcp" }[];
  setZone(zone: Zone): void;
  close(): Promise<void>;
}

const DEFAULT_TTL = 300;
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

const norm = (name: string) => name.toLowerCase().replace(/\.$/, "");

/** The zone's entry for a name; keys are meant to be lower-case, but "Host.Test." finds it too. */
function entryOf(zone: Zone, name: string): ZoneEntry | undefined {
  return zone[name] ?? Object.entries(zone).find(([key]) => norm(key) === name)?.[1];
}

function records(name: string, type: string, entry: ZoneEntry): Answer[] {
  const base = { name, class: "IN" as const };
  switch (type) {
    case "MX":
      return (entry.MX ?? []).map((r) => ({ ...base, type: "MX", ttl: r.ttl ?? DEFAULT_TTL, data: { preference: r.preference, exchange: r.exchange } }));
    case "A":
    case "AAAA":
      return (entry[type] ?? []).map((r) =>
        typeof r === "string"
          ? { ...base, type, ttl: DEFAULT_TTL, data: r }
          : { ...base, type, ttl: r.ttl ?? DEFAULT_TTL, data: r.address },
      );
    case "TXT":
      // dns-packet turns the strings of a TXT array into Buffers in place, so each gets a copy.
      return (entry.TXT ?? []).map((r) =>
        typeof r === "object" && !Array.isArray(r)
          ? { ...base, type: "TXT", ttl: r.ttl ?? DEFAULT_TTL, data: Array.isArray(r.data) ? [...r.data] : r.data }
          : { ...base, type: "TXT", ttl: DEFAULT_TTL, data: Array.isArray(r) ? [...r] : r },
      );
    default:
      return [];
  }
}

/** The replies to send for one query (none: stay silent). */
function respond(zone: Zone, query: Packet, transport: "udp" | "tcp", negativeTtl: number, log: DnsServer["queries"]): Packet[] | "garbage" {
  const question: Question | undefined = query.questions?.[0];
  const reply = (rcode: number, answers: Answer[] = [], extra = 0): Packet => ({
    type: "response",
    id: query.id ?? 0,
    flags: packet.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & packet.RECURSION_DESIRED) | packet.RECURSION_AVAILABLE | extra | rcode,
    questions: question ? [question] : [],
    answers,
    authorities:
      rcode === RCODE.NXDOMAIN || (rcode === RCODE.NOERROR && answers.length === 0 && extra === 0)
        ? [{ name: "test", type: "SOA", ttl: negativeTtl, class: "IN", data: { mname: "ns.test", rname: "hostmaster.test", serial: 1, minimum: negativeTtl } }]
        : [],
  });
  if (question === undefined) return [reply(1)]; // FORMERR
  const name = norm(question.name);
  log.push({ name, type: question.type, transport });
  const entry = entryOf(zone, name);
  if (entry === undefined || entry.NXDOMAIN) return [reply(RCODE.NXDOMAIN)];
  if (entry.hang) return [];
  if (entry.garbage) return "garbage";
  if (entry.SERVFAIL) return [reply(RCODE.SERVFAIL)];
  if (entry.REFUSED) return [reply(RCODE.REFUSED)];
  if (entry.truncate && transport === "udp") return [reply(RCODE.NOERROR, [], packet.TRUNCATED_RESPONSE)];

  const answers: Answer[] = [];
  let owner = question.name;
  let current: ZoneEntry | undefined = entry;
  for (let links = 0; current?.CNAME !== undefined && question.type !== "CNAME" && links < 16; links++) {
    const c: string | ({ target: string } & Ttl) = current.CNAME;
    const target: string = typeof c === "string" ? c : c.target;
    answers.push({ name: owner, type: "CNAME", class: "IN", ttl: typeof c === "string" ? DEFAULT_TTL : c.ttl ?? DEFAULT_TTL, data: target });
    owner = target;
    current = entryOf(zone, norm(target));
  }
  if (current === undefined || current.NXDOMAIN) return [reply(RCODE.NXDOMAIN, answers)];
  answers.push(...records(owner, question.type, current));
  const real = reply(RCODE.NOERROR, answers);
  if (entry.spoof && transport === "udp") {
    const wrongId = { ...real, id: ((query.id ?? 0) + 1) & 0xffff, answers: [{ name: owner, type: "A" as const, ttl: 300, data: "6.6.6.6" }] };
    const wrongName = { ...real, questions: [{ ...question, name: "evil.example" }] };
    return [wrongId, wrongName, real];
  }
  return [real];
}

const GARBAGE = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]);

function listenTcp(server: TcpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Starts the responder on a free port (the same one for UDP and TCP). */
export async function startDnsServer(initial: Zone, opts: DnsServerOptions = {}): Promise<DnsServer> {
  const host = opts.host ?? "127.0.0.1";
  const negativeTtl = opts.negativeTtl ?? 60;
  let zone = initial;
  const queries: DnsServer["queries"] = [];
  const sockets = new Set<Socket>();

  const handle = (bytes: Buffer, transport: "udp" | "tcp"): Buffer[] => {
    let query: Packet;
    try {
      query = packet.decode(bytes);
    } catch {
      return [];
    }
    const out = respond(zone, query, transport, negativeTtl, queries);
    return out === "garbage" ? [GARBAGE] : out.map((p) => packet.encode(p));
  };

  // Bind UDP on port 0, then TCP on the same port; try again if TCP finds that port taken.
  for (let attempt = 0; ; attempt++) {
    const udp: UdpSocket = createSocket(host === "::1" ? "udp6" : "udp4");
    await new Promise<void>((resolve) => udp.bind(0, host, resolve));
    const port = udp.address().port;
    const tcp = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy());
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const length = buffered.readUInt16BE(0);
          const message = buffered.subarray(2, 2 + length);
          buffered = buffered.subarray(2 + length);
          for (const out of handle(message, "tcp")) {
            const prefix = Buffer.alloc(2);
            prefix.writeUInt16BE(out.length);
            socket.write(Buffer.concat([prefix, out]));
          }
        }
      });
    });
    try {
      await listenTcp(tcp, port, host);
    } catch (err) {
      udp.close();
      if (attempt >= 10) throw err;
      continue;
    }
    udp.on("message", (message, peer) => {
      for (const out of handle(message, "udp")) udp.send(out, peer.port, peer.address);
    });
    return {
      port,
      address: host === "::1" ? `[::1]:${port}` : `${host}:${port}`,
      queries,
      setZone: (z) => {
        zone = z;
      },
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      },
    };
  }
}
