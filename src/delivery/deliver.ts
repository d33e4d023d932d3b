/**
 * One delivery job: every claimed recipient of one message at one destination domain, in one
 * SMTP transaction (SPEC.md "Delivery rules"). Resolves the destination, applies the address
 * guard, walks the MX hosts in order, and returns one classified result per recipient.
 * Knows nothing of SQL: the worker records what this returns.
 */
import { resolveDestinations } from "../dns/mx.js";
import { checkDestination } from "../dns/guard.js";
import type { Resolver } from "../dns/types.js";
import { wireAddress } from "../smtp/commands.js";
import { openSession, type Reply, type SmtpSession, type SmtpTimeouts } from "../smtp/connection.js";
import type { EncodedMessage } from "../smtp/data.js";
import { bounceKind, classifyRcptReply, classifyReply, defer, fail, isTooManyRecipients, type Classified } from "./classify.js";
import { applyPolicy, type MtaStsFetcher } from "./mta-sts.js";
import type { SessionPool } from "./pool.js";

export interface JobMessage {
  id: string;
  accountId: string;
  mailFrom: string;
  /** The message as DATA will carry it: encoded once (dot-stuffed, CRLF) for every transaction, or raw. */
  data: Buffer | EncodedMessage;
  smtputf8: boolean;
  messageIdHeader: string;
  tags: Record<string, string>;
}

export interface JobRecipient {
  id: string;
  email: string;
}

export interface Relay {
  host: string;
  port: number;
  implicitTls: boolean;
  auth?: { user: string; pass: string };
}

export interface DeliverDeps {
  resolver: Resolver;
  allowNetworks: readonly string[];
  smtpPort: number;
  heloName: string;
  relay?: Relay;
  timeouts?: Partial<SmtpTimeouts>;
  pool: SessionPool<SmtpSession>;
  /** Sessions running a job's transactions right now (the worker closes them when a shutdown's grace ends). */
  live?: Set<SmtpSession>;
  /** True once the worker shuts down: a job starts no new host, connection or transaction (what it did not try is reported not attempted). */
  halted?: () => boolean;
  /**
   * How many idle pooled sessions may stay open when a job opens a connection (the worker:
   * MAX_CONNECTIONS less its running jobs, each of which holds or opens at most one). Absent: no limit.
   */
  idleRoom?: () => number;
  /** MTA-STS policies (RFC 8461); one fetcher per process so its cache lives between jobs. */
  mtaSts?: MtaStsFetcher;
  /** Extra trust roots for verified TLS (tests). */
  tlsCa?: string | Buffer;
  /** Most addresses tried per job (Postfix: 5). */
  maxAddresses?: number;
  random?: () => number;
  now?: () => number;
}

export interface RecipientResult {
  recipient: JobRecipient;
  result: Classified & { bounceKind?: "hard" | "soft" };
  attempted: boolean;
  mx: string | null;
  ip: string | null;
  tls: { version: string; cipher: string } | null;
  startedAt: Date;
  durationMs: number;
}

/** Transactions at most per job and connection when a server limits its recipients (100 recipients a job at most). */
const MAX_RCPT_ROUNDS = 100;

interface Candidate {
  mx: string;
  ip: string;
  port: number;
}

/** Delivers one job; never throws for network or protocol trouble (those are outcomes). */
export async function deliverJob(deps: DeliverDeps, message: JobMessage, domain: string, rcpts: JobRecipient[]): Promise<RecipientResult[]> {
  // The sessions this job holds are in deps.live until it hands them back or closes them (a
  // session handed back may be taken by another job at once: it is that job's then).
  const held = new Set<SmtpSession>();
  const sessions: Sessions = {
    hold: (s) => (held.add(s), deps.live?.add(s), s),
    giveBack: (key, s) => (held.delete(s), deps.live?.delete(s), deps.pool.give(key, s)),
    close: (s) => (held.delete(s), deps.live?.delete(s), s.close()),
  };
  try {
    return await deliverWith(deps, message, domain, rcpts, sessions);
  } finally {
    for (const s of held) deps.live?.delete(s);
  }
}

interface Sessions {
  hold(s: SmtpSession): SmtpSession;
  giveBack(key: string, s: SmtpSession): void;
  close(s: SmtpSession): void;
}

async function deliverWith(deps: DeliverDeps, message: JobMessage, domain: string, rcpts: JobRecipient[], sessions: Sessions): Promise<RecipientResult[]> {
  const now = deps.now ?? Date.now;
  const started = now();
  const startedAt = new Date(started);
  let where: { mx: string | null; ip: string | null; tls: RecipientResult["tls"] } = { mx: null, ip: null, tls: null };
  const results = new Map<string, RecipientResult>();
  // `transaction`: the reply was to the whole transaction (MAIL FROM, DATA, the final "."), not
  // to this recipient's RCPT. Such a bounce says nothing about the mailbox, so it is soft: one
  // refused sender or message must never put every recipient on the suppression list (useSend #337).
  const settle = (r: JobRecipient, result: Classified, attempted: boolean, transaction = false) => {
    const bounce = result.outcome === "bounce" ? { bounceKind: transaction ? ("soft" as const) : bounceKind(result.reason.enhanced, result.reason.code) } : {};
    results.set(r.id, { recipient: r, result: { ...result, ...bounce }, attempted, ...where, startedAt, durationMs: now() - started });
  };
  const settleAll = (result: Classified, attempted: boolean, transaction = false) =>
    rcpts.forEach((r) => results.has(r.id) || settle(r, result, attempted, transaction));

  const found = await candidates(deps, domain);
  if ("outcome" in found) {
    settleAll(found, false);
    return rcpts.map((r) => results.get(r.id)!);
  }

  // MTA-STS: an `enforce` policy keeps only matching MX hosts and requires verified TLS; any
  // failure under it defers (RFC 8461 §5.1), never falls back to plain text.
  let list = found;
  // A relay that takes credentials gets them only over TLS whose certificate verifies against
  // the relay's name (Node's roots, plus NODE_EXTRA_CA_CERTS): unverified TLS would hand the
  // password to whoever sits in between. Without credentials a relay is any other hop.
  let tls: "opportunistic" | "required" = deps.relay?.auth ? "required" : "opportunistic";
  const sts = deps.mtaSts && !deps.relay ? await deps.mtaSts.policyFor(domain) : null;
  if (sts?.kind === "policy") {
    const applied = applyPolicy(sts.policy, found);
    if ("refuse" in applied) {
      settleAll(defer(`${domain}: MTA-STS policy: ${applied.refuse}`, "4.7.5"), false);
      return rcpts.map((r) => results.get(r.id)!);
    }
    list = applied.candidates;
    tls = applied.tls;
  }

  // The addresses as RCPT TO carries them: an ASCII local part at an internationalised domain
  // travels with the domain's A-labels (RFC 5890 §2.3.2.1), so it needs no SMTPUTF8.
  const wire = new Map(rcpts.map((r) => [r.id, wireAddress(r.email)]));
  const byWire = new Map(rcpts.map((r) => [wire.get(r.id)!, r]));
  /** What a refused RCPT means for its recipient: our own refusal fails it, the server's is classified. */
  const rcptOutcome = (reply: Reply): Classified =>
    reply.synthetic ? { outcome: "fail", reason: { code: reply.code, enhanced: reply.enhanced, text: reply.text } } : classifyRcptReply(reply.code, reply.enhanced, reply.text);
  let last: Classified = defer("no destination host could be reached", "4.4.1");
  let triedAny = false;
  // Shutting down (the worker's grace period ended): no new host, connection or transaction;
  // what is left is reported as not tried, and the worker gives those leases back.
  let halted = false;
  const halt = () => (halted = deps.halted?.() ?? false);
  /** A transaction's recipients refused at RCPT keep their own answer (their mailbox's). */
  const settleRefused = (learned: readonly { to: string; reply: Reply; accepted: boolean }[]) => {
    for (const r of learned) {
      const rcpt = byWire.get(r.to);
      if (!rcpt || r.accepted || results.has(rcpt.id)) continue;
      settle(rcpt, rcptOutcome(r.reply), true);
    }
  };
  for (const c of list.slice(0, deps.maxAddresses ?? 5)) {
    if (halt()) break;
    where = { mx: c.mx, ip: c.ip, tls: null };
    // Sessions opened under a required-TLS policy are pooled apart from opportunistic ones, and
    // per MX name: such a session's certificate was checked against that name only, so another
    // domain's MX at the same address must not reuse it (RFC 8461 §4.2; it bypassed enforce).
    const key = tls === "required" ? `${c.ip}:${c.port}:required:${c.mx}` : `${c.ip}:${c.port}:${tls}`;
    const transaction = { from: wireAddress(message.mailFrom), to: rcpts.map((r) => wire.get(r.id)!), data: message.data, smtputf8: message.smtputf8 };
    // A warm connection gets RSET between transactions, pipelined ahead of MAIL (one round trip
    // fewer per message). No 250 to it — the server closed the idle connection meanwhile —
    // means nothing was taken: the transaction goes again on a fresh connection.
    let session = deps.pool.take(key);
    if (session) sessions.hold(session);
    let tx = session ? await session.send(transaction, { reset: true }) : null;
    if (session && tx && !tx.ok && tx.error.command === "RSET") {
      sessions.close(session);
      session = null;
      tx = null;
    }
    if (!session) {
      if (deps.idleRoom) await deps.pool.trim(deps.idleRoom());
      const opened = await open(deps, c, tls);
      if (!opened.ok) {
        triedAny = true;
        last = defer(`${c.mx} [${c.ip}]: ${opened.error.message}`, opened.error.reply?.enhanced ?? "4.4.1");
        if (opened.error.reply && opened.error.reply.code >= 500 && opened.error.command !== "CONNECT") {
          last = classifyReply(opened.error.reply.code, opened.error.reply.enhanced, opened.error.reply.text);
          if (last.outcome === "bounce") last = defer(`${c.mx} [${c.ip}] refused the session: ${opened.error.reply.code} ${opened.error.reply.text}`, opened.error.reply.enhanced);
        }
        continue;
      }
      session = sessions.hold(opened.session);
      // The grace period may have ended while this connection was being opened: it must not
      // start a transaction now (the worker may be giving the leases back).
      if (halt()) {
        sessions.close(session);
        break;
      }
    }
    triedAny = true;
    where.tls = session.tls;
    tx ??= await session.send(transaction);
    if (!tx.ok) {
      // A refusal (or our own refusal before sending) leaves a healthy connection: it goes back
      // warm (the next transaction starts with RSET) and is QUIT politely when it expires.
      // Anything else (timeout, drop, protocol error) leaves it in an unknown state: closed.
      if (tx.error.kind === "reply" && session.usable) sessions.giveBack(key, session);
      else sessions.close(session);
      const reply = tx.error.reply;
      if (reply?.synthetic) {
        // We refused before sending (SIZE exceeded, SMTPUTF8 or 8BITMIME needed but not
        // offered, …): the receiver said nothing, and retrying the same host cannot help.
        for (const r of tx.rcpts) {
          const rcpt = byWire.get(r.to);
          if (rcpt && !results.has(rcpt.id)) settle(rcpt, { outcome: "fail", reason: { code: r.reply.code, enhanced: r.reply.enhanced, text: `${c.mx} [${c.ip}]: ${r.reply.text}` } }, true);
        }
        settleAll({ outcome: "fail", reason: { code: reply.code, enhanced: reply.enhanced, text: `${c.mx} [${c.ip}]: ${reply.text}` } }, true);
        break;
      }
      if (reply && reply.code >= 500) {
        // A permanent answer to this transaction (MAIL FROM or DATA refused). A recipient whose
        // RCPT was refused before keeps that answer: it is about its mailbox (550 5.1.1 still
        // suppresses), the transaction's is not.
        settleRefused(tx.rcpts);
        settleAll(classifyReply(reply.code, reply.enhanced, reply.text), true, true);
        break;
      }
      last = defer(`${c.mx} [${c.ip}]: ${tx.error.message}`, reply?.enhanced ?? "4.4.2");
      continue; // connection trouble or 4xx before any recipient was settled: next host
    }
    // A server with a recipient limit answers 452 (or 552, RFC 5321 §4.5.3.1.10) to the RCPTs
    // past it. When the transaction still delivered to others, the rest go at once in the next
    // transaction on this connection (§4.5.3.1.8: "prepared to transmit in chunks"), as Postfix
    // does, instead of waiting for a retry; a round that delivers to nobody ends it (deferred).
    let batch = rcpts;
    for (let round = 1; ; round++) {
      const again: JobRecipient[] = [];
      let delivered = 0;
      for (const r of tx.rcpts) {
        const rcpt = byWire.get(r.to); // the transaction carried this round's recipients only
        if (!rcpt) continue;
        if (!r.accepted && !r.reply.synthetic && isTooManyRecipients(r.reply.code)) again.push(rcpt);
        else if (!r.accepted) settle(rcpt, rcptOutcome(r.reply), true);
        else if (tx.data) {
          const outcome = classifyReply(tx.data.code, tx.data.enhanced, tx.data.text);
          if (outcome.outcome === "delivered") delivered++;
          settle(rcpt, outcome, true, true);
        }
      }
      if (again.length === 0) break;
      if (delivered === 0 || round >= MAX_RCPT_ROUNDS || !session.usable) {
        settleRefused(tx.rcpts); // 452 and 552 to RCPT both defer
        break;
      }
      batch = again;
      if (halt()) break; // the round's recipients are reported not tried
      const next = await session.send({ ...transaction, to: batch.map((r) => wire.get(r.id)!) });
      if (!next.ok) {
        // Only this round's recipients are left, the others are settled: no other host for them
        // now. Those refused at RCPT keep their own answer, as in the first round.
        const reply = next.error.reply;
        if (next.error.kind === "reply" && session.usable) sessions.giveBack(key, session);
        else sessions.close(session);
        settleRefused(next.rcpts);
        const outcome = reply && reply.code >= 500 && !reply.synthetic ? classifyReply(reply.code, reply.enhanced, reply.text) : defer(`${c.mx} [${c.ip}]: ${next.error.message}`, reply?.enhanced ?? "4.4.2");
        for (const rcpt of batch) if (!results.has(rcpt.id)) settle(rcpt, outcome, true, true);
        session = null;
        break;
      }
      tx = next;
    }
    if (session) sessions.giveBack(key, session);
    if (halted) break;
    settleAll(defer(`${c.mx} [${c.ip}] gave no answer for this recipient`, "4.4.2"), true);
    break;
  }
  if (halted) settleAll(defer("not tried: the worker is shutting down", "4.3.2"), false);
  settleAll(last, triedAny);
  return rcpts.map((r) => results.get(r.id)!);
}

async function open(deps: DeliverDeps, c: Candidate, tls: "opportunistic" | "required" | "none"): Promise<Awaited<ReturnType<typeof openSession>>> {
  const relay = deps.relay;
  const first = await openSession({
    host: c.ip,
    port: c.port,
    serverName: c.mx,
    heloName: deps.heloName,
    tls,
    implicitTls: relay?.implicitTls ?? false,
    auth: relay?.auth,
    timeouts: deps.timeouts,
    ca: deps.tlsCa,
  });
  // RFC 3207 leaves it to the client: a TLS failure on an opportunistic hop is retried in
  // plain text once, as Postfix does (never for a relay that needs AUTH).
  if (!first.ok && first.error.kind === "tls" && tls === "opportunistic" && !relay?.auth) return open(deps, c, "none");
  return first;
}

/**
 * A domain's candidates as the last job worked them out, for at most MEMO_MS and never past the
 * records' TTL: a worker sends job after job to the same few domains, and resolving from the
 * resolver's cache, ordering and guard-checking each time took ~8 µs of CPU and ~7 KB of
 * garbage a job (bench:delivery). Per DeliverDeps (one per worker), so tests' set-ups never share.
 * Only an order with no random choice in it is kept (a negative answer's TTL, e.g. a host's
 * missing AAAA, is overrun by at most MEMO_MS). Callers must not change the array.
 */
const MEMO_MS = 1_000;
const MEMO_DOMAINS = 10_000;
const memo = new WeakMap<DeliverDeps, Map<string, { until: number; candidates: Candidate[] }>>();

/** The addresses to try, in order, or the outcome that ends the job before connecting. */
async function candidates(deps: DeliverDeps, domain: string): Promise<Candidate[] | Classified> {
  if (deps.relay) {
    const relay = deps.relay;
    const literal = /^[\d.]+$|:/.test(relay.host);
    if (literal) return [{ mx: relay.host, ip: relay.host, port: relay.port }];
    const [v4, v6] = await Promise.all([deps.resolver.a(relay.host), deps.resolver.aaaa(relay.host)]);
    const ips = [...(v4.ok ? v4.records : []), ...(v6.ok ? v6.records : [])];
    if (ips.length === 0) return defer(`the relay ${relay.host} does not resolve`, "4.4.3");
    return ips.map((ip) => ({ mx: relay.host, ip, port: relay.port }));
  }
  const at = (deps.now ?? Date.now)();
  let known = memo.get(deps);
  const hit = known?.get(domain);
  if (hit && hit.until > at) return hit.candidates;
  // Whether the order involved a choice: equal MX preferences or several addresses of a family
  // are shuffled for every job (RFC 5321 §5.1), so only an order without one is remembered.
  let shuffled = false;
  const random = deps.random ?? Math.random;
  const dest = await resolveDestinations(deps.resolver, domain, { random: () => ((shuffled = true), random()) });
  switch (dest.kind) {
    case "null-mx":
      return fail(`${domain} accepts no mail (null MX, RFC 7505)`, "5.1.10");
    case "nxdomain":
      return fail(`${domain} does not exist (NXDOMAIN)`, "5.1.2");
    case "temporary":
      return defer(`DNS lookup for ${domain} failed temporarily: ${dest.reason}`, "4.4.3");
    case "no-addresses":
      return dest.temporary ? defer(`no address for ${domain}'s mail hosts yet: ${dest.reason}`, "4.4.3") : fail(`${domain}'s mail hosts have no address: ${dest.reason}`, "5.4.4");
    case "hosts": {
      const out: Candidate[] = [];
      const refused: string[] = [];
      for (const h of dest.hosts)
        for (const ip of h.addresses) {
          const ok = checkDestination(ip, deps.allowNetworks);
          if (ok.ok) out.push({ mx: h.name, ip, port: deps.smtpPort });
          else refused.push(ok.reason);
        }
      if (out.length === 0) {
        // A host whose look-up failed only for now may yet have an address we may use
        // (ENGINE-NOTES 8: a temporary DNS error defers), so only a certain refusal fails.
        const pending = dest.skipped.filter((s) => s.temporary);
        if (pending.length) return defer(`refused destination for ${domain}: ${refused.join("; ")}; not resolved yet: ${pending.map((s) => `${s.name}: ${s.reason}`).join("; ")}`, "4.4.3");
        return fail(`refused destination for ${domain}: ${refused.join("; ")}`, "5.4.4");
      }
      if (!shuffled) {
        if (!known) memo.set(deps, (known = new Map()));
        if (known.size >= MEMO_DOMAINS) known.clear();
        known.set(domain, { until: at + Math.min(MEMO_MS, dest.ttl * 1000), candidates: out });
      }
      return out;
    }
  }
}
