/**
 * The webhook dispatcher: its own loop in the worker role (several processes may run it).
 * Claims due deliveries in batches (queue/claim.ts), keeps one queue per endpoint and at most
 * `concurrency` POSTs in flight to each, so a hanging endpoint only ever holds its own slots;
 * signs and POSTs each event, and records tries and outcomes in batches, one statement each
 * (queue/complete.ts). Woken by NOTIFY on WEBHOOK_CHANNEL, by `wake()`, when a slot frees and
 * when a retry it scheduled falls due; a poll of at most a second is the fallback.
 */
import { randomBytes } from "node:crypto";
import type { Store } from "../db/client.js";
import type { Resolver } from "../dns/types.js";
import { WriteBackoff } from "../lib/backoff.js";
import { WEBHOOK_CHANNEL } from "../lib/channels.js";
import { safeError, type Logger } from "../lib/logger.js";
import type { ServiceSecret } from "../lib/secret.js";
import { createWebhookClient, type PostResult } from "./client.js";
import { claimDeliveries, type ClaimedDelivery } from "./queue/claim.js";
import { recordTries, type FinishedTry } from "./queue/complete.js";
import { extendLeases, reapExpiredLeases, releaseDeliveries } from "./queue/lease.js";
import { tryOutcome } from "./outcome.js";
import type { WebhookRetryPolicy } from "./retry.js";
import { signatureHeaders } from "./sign.js";
import { endpointCache, type Endpoint } from "./endpoints.js";

/**
 * Per endpoint a dispatcher holds at most this many rounds of `concurrency` (in flight and
 * queued)… Deep, so that a fast endpoint is fed by few large claims (a claim costs about the
 * same for 20 rows as for 200); the heartbeat keeps the leases of queued rows alive.
 */
const PREFETCH_ROUNDS = 64;
/**
 * …and claims more for it once it holds no more than this many rounds. Half the prefetch: a
 * claim of 256 rows took 11–50 ms under load in bench:webhooks, and with 256 left the queue
 * ran down to a handful (once to 7, fewer than the 16 slots) before the rows arrived.
 */
const REFILL_ROUNDS = 32;
/**
 * After a claim that found nothing, the next one waits this long at least: a claim walks past
 * the due rows of endpoints at their cap, so a NOTIFY storm during a backlog must not turn
 * into back-to-back scans of it. (Wakes meanwhile are remembered, not lost.)
 */
const EMPTY_CLAIM_GAP_MS = 50;
/**
 * Completion statements in flight at once, and rows in each. One: tries finishing while it
 * runs make the next batch larger, which costs the database less than more statements (more
 * at once measured no faster in bench:webhooks, with smaller batches). A batch is sent once it
 * holds MIN_BATCH tries or its first try has waited FLUSH_WAIT_MS: each statement costs
 * PostgreSQL a plan and a commit whatever its size, so batches of ~70 (sent as soon as the
 * previous statement returned) spent more of its CPU than the rows did.
 */
const MAX_FLUSHES = 1;
const MAX_BATCH = 400;
const MIN_BATCH = 200;
const FLUSH_WAIT_MS = 5;

export interface DispatcherOptions {
  store: Store;
  logger: Logger;
  secret: ServiceSecret;
  http: { resolver: Resolver; allowNetworks: readonly string[]; ca?: string | Buffer };
  /** POSTs in flight at once per endpoint (WEBHOOK_CONCURRENCY). */
  concurrency: number;
  retry: WebhookRetryPolicy;
  /** One try's deadline (WEBHOOK_TIMEOUT). */
  timeoutMs: number;
  /** How long a claim holds a delivery without a heartbeat. Default 2 × timeoutMs + 30 s. */
  leaseMs?: number;
  /** Fallback poll, at most 1000 ms. */
  pollMs?: number;
  /** Deliveries held at once (in flight and queued), all endpoints. Default 2000. */
  maxHeld?: number;
  now?: () => Date;
  random?: () => number;
}

export interface Dispatcher {
  readonly id: string;
  /** Looks for due deliveries now (the in-process wake). */
  wake(): void;
  /** Stops claiming, lets tries in flight finish (up to `graceMs`), records them, gives back the rest. */
  stop(graceMs?: number): Promise<void>;
}

/** A claimed delivery with its endpoint, looked up when it was claimed. */
type Job = ClaimedDelivery & { endpoint: Endpoint };

export async function startDispatcher(o: DispatcherOptions): Promise<Dispatcher> {
  const id = `d_${randomBytes(6).toString("hex")}`;
  const log = o.logger.child({ dispatcher: id });
  const now = o.now ?? (() => new Date());
  const random = o.random ?? Math.random;
  const pollMs = Math.min(1_000, o.pollMs ?? 1_000);
  const leaseMs = o.leaseMs ?? 2 * o.timeoutMs + 30_000;
  const maxHeld = o.maxHeld ?? 2_000;
  const client = createWebhookClient({ ...o.http, timeoutMs: o.timeoutMs, maxSockets: o.concurrency });
  const endpoints = endpointCache(o.secret, o.store);
  const load = new Map<string, { inFlight: number; queue: Job[] }>(); // per endpoint id
  const held = new Set<number>(); // claimed, not recorded yet
  let active = 0; // queued or in flight, all endpoints
  let heldBack = false; // a claim was cut short by maxHeld
  let posting = 0; // POSTs in flight, all endpoints
  let allPosted: (() => void) | null = null; // stop() waiting for posting to reach 0
  const pending: FinishedTry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let stopping = false;
  let wakeUp: (() => void) | null = null;
  let woken = false;
  let news = true; // the first claim looks at everything
  const flushes = new Set<Promise<void>>();
  let flushTimer: NodeJS.Timeout | null = null;

  const rouse = () => {
    woken = true;
    const w = wakeUp;
    wakeUp = null;
    w?.();
  };
  /** Work may have arrived from outside (NOTIFY, wake(), a retry falling due, the poll): claim for any endpoint. */
  const wake = () => {
    news = true;
    rouse();
  };
  /** An endpoint we hold has room again: ends even the pause after an empty claim. */
  let gapUp: (() => void) | null = null;
  const refill = () => {
    const g = gapUp;
    gapUp = null;
    g?.();
    rouse();
  };
  /** Whether a claim could take anything without news: some endpoint we hold is at or below its refill mark. */
  const roomForKnown = () => [...load.values()].some((l) => l.inFlight + l.queue.length <= REFILL_ROUNDS * o.concurrency);
  const later = (ms: number) => {
    const t = setTimeout(() => (timers.delete(t), wake()), ms);
    timers.add(t);
  };

  /**
   * Tries are recorded in batches, MAX_FLUSHES statements at most at once (their rows never
   * overlap). A batch whose write fails (PostgreSQL restarting, a dropped connection) is kept and
   * written again with backoff while the heartbeat renews its leases: dropping it would lose the
   * record of those tries and POST every one of those events again once the leases expired.
   * Writes failing for longer than a lease drop their batch, as before (a batch that can never
   * be written must not hold back every later one).
   */
  const backoff = new WriteBackoff(leaseMs);
  let retryTimer: NodeJS.Timeout | null = null;
  const record = async (batch: FinishedTry[]) => {
    try {
      const lost = await recordTries(o.store, id, batch, now());
      backoff.succeeded();
      for (const t of batch) held.delete(t.seq);
      if (lost.length) log.warn({ count: lost.length }, "lease lost before the try was recorded; another dispatcher retries it");
      // Retries falling due before the next poll get a wake-up of their own.
      const soon = Math.min(...batch.map((t) => t.nextAttemptAt?.getTime() ?? Infinity)) - now().getTime();
      if (soon < pollMs) later(Math.max(0, soon));
    } catch (err) {
      const ms = backoff.failed();
      if (ms === null) {
        log.error({ err: safeError(err), count: batch.length }, "recording webhook tries failed for longer than a lease; dropped, the deliveries will be tried again");
        for (const t of batch) held.delete(t.seq);
        return;
      }
      pending.unshift(...batch);
      log.error({ err: safeError(err), count: batch.length, retryMs: ms }, "recording webhook tries failed; kept, and written again shortly");
      retryTimer ??= setTimeout(() => {
        retryTimer = null;
        flush();
      }, ms);
    }
  };
  const flush = (): void => {
    if (retryTimer) return; // after a failed write, the retry takes everything
    while (pending.length && flushes.size < MAX_FLUSHES) {
      const p: Promise<void> = record(pending.splice(0, MAX_BATCH)).finally(() => (flushes.delete(p), scheduleFlush()));
      flushes.add(p);
    }
  };
  const scheduleFlush = () => {
    if (pending.length >= MIN_BATCH) flush();
    else if (pending.length) flushTimer ??= setTimeout(() => ((flushTimer = null), flush()), FLUSH_WAIT_MS);
  };

  const post = (job: Job, ep: Endpoint, startedAt: Date): Promise<PostResult> => {
    if (!ep.ok) return Promise.resolve({ kind: "error", error: ep.reason, durationMs: 0 });
    return client.post(ep.target, job.body, signatureHeaders(ep.key, job.eventId, startedAt.getTime() / 1000, job.body), job.webhookId);
  };
  const failed = (err: unknown): PostResult => ({ kind: "error", error: String(err), durationMs: 0 });

  /** One try ended: record it, then start what its slot allows and claim more when the endpoint runs low. */
  const ended = (webhookId: string, l: { inFlight: number; queue: Job[] }, job: Job, startedAt: Date, r: PostResult) => {
    try {
      pending.push(tryOutcome(job, r, startedAt, o.retry, now(), random));
      scheduleFlush();
    } finally {
      posting--;
      if (posting === 0) allPosted?.();
      l.inFlight--;
      active--;
      const left = l.inFlight + l.queue.length;
      if (left === 0) load.delete(webhookId);
      startReady(webhookId);
      // Down to this endpoint's refill mark, or drained, or the process has room again after
      // a claim cut short by maxHeld: claim more. (Not on every completion: a claim costs.)
      if (left === REFILL_ROUNDS * o.concurrency) refill();
      else if (left === 0 || (heldBack && active <= maxHeld / 2)) (heldBack = false), wake();
    }
  };

  /** Starts queued jobs of one endpoint while it has free slots. */
  const startReady = (webhookId: string) => {
    const l = load.get(webhookId);
    while (l && l.queue.length && l.inFlight < o.concurrency && !stopping) {
      const job = l.queue.shift()!;
      l.inFlight++;
      posting++;
      const startedAt = now();
      let p: Promise<PostResult>;
      try {
        p = post(job, job.endpoint, startedAt);
      } catch (err) {
        p = Promise.resolve(failed(err));
      }
      // Plain callbacks, not an async function with catch and finally: three promises fewer per try.
      p.then(
        (r) => ended(webhookId, l, job, startedAt, r),
        (err: unknown) => ended(webhookId, l, job, startedAt, failed(err)),
      );
    }
  };

  /**
   * Claims what there is room for; `limited`: the claim was full, so more may be due.
   * - "new": for the endpoints this dispatcher holds nothing of (there is news, or a poll is
   *   due). The ones it holds are skipped: their backlog comes first in due order and would fill
   *   the claim's LIMIT before a newer endpoint's row is reached.
   * - "refill": the endpoints held that have room, no more rows than that room (a claim locks
   *   every row it looks at, kept or not).
   */
  const claim = async (mode: "new" | "refill"): Promise<{ count: number; limited: boolean }> => {
    heldBack = active + PREFETCH_ROUNDS * o.concurrency > maxHeld;
    if (active >= maxHeld) return { count: 0, limited: false };
    const rooms = new Map<string, number>();
    let roomHeld = 0;
    for (const [webhookId, l] of load) {
      const n = l.inFlight + l.queue.length;
      const room = mode === "new" || n > REFILL_ROUNDS * o.concurrency ? 0 : PREFETCH_ROUNDS * o.concurrency - n;
      rooms.set(webhookId, room);
      roomHeld += room;
    }
    let limit = Math.min(PREFETCH_ROUNDS * o.concurrency, maxHeld - active);
    if (mode === "refill") limit = Math.min(limit, roomHeld);
    if (limit <= 0) return { count: 0, limited: false };
    const claimed = await claimDeliveries(o.store, {
      dispatcherId: id,
      limit,
      perEndpoint: PREFETCH_ROUNDS * o.concurrency,
      rooms,
      only: mode === "new" ? undefined : [...rooms].filter(([, n]) => n > 0).map(([webhookId]) => webhookId),
      leaseMs,
      now: now(),
    });
    const claimedFor = new Set(claimed.map((d) => d.webhookId));
    let known: Map<string, Endpoint>;
    try {
      known = await endpoints.get(claimedFor);
    } catch (err) {
      // Nothing was tried: the leases go back at once (not held until they expire).
      await releaseDeliveries(o.store, id, claimed.filter((d) => !held.has(d.seq)).map((d) => d.seq), now()).catch(() => {});
      throw err;
    }
    for (const d of claimed) {
      if (held.has(d.seq)) continue; // our own lease expired and we claimed it again: one try is enough
      held.add(d.seq);
      active++;
      const l = load.get(d.webhookId) ?? { inFlight: 0, queue: [] };
      load.set(d.webhookId, l);
      const job = d as Job; // the endpoint added in place: a spread per row costs more
      job.endpoint = known.get(d.webhookId)!;
      l.queue.push(job);
    }
    for (const webhookId of claimedFor) startReady(webhookId);
    // A full refill says nothing of other endpoints: only a full claim for new ones is news.
    return { count: claimed.length, limited: mode === "new" && claimed.length >= limit };
  };

  let lastFullClaim = performance.now();
  const loop = async () => {
    while (!stopping) {
      try {
        woken = false;
        const claimedAt = performance.now();
        // A claim for new endpoints on news, and at least once per poll interval even while
        // refills keep waking the loop before its poll timer fires: the poll is the fallback for
        // work no NOTIFY announced (a retry another dispatcher scheduled, say). Then a refill of
        // the endpoints held, in the same turn.
        const fresh = news || claimedAt - lastFullClaim >= pollMs;
        news = false;
        if (fresh) lastFullClaim = claimedAt;
        const found = fresh ? await claim("new") : { count: -1, limited: false };
        const refilled = roomForKnown() ? await claim("refill") : { count: -1, limited: false };
        const count = Math.max(found.count, refilled.count);
        const limited = found.limited;
        if (limited) {
          news = true; // a full claim: more may be due, for any endpoint
          continue;
        }
        const gap = EMPTY_CLAIM_GAP_MS - (performance.now() - claimedAt);
        if (count === 0 && gap > 0)
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, gap);
            gapUp = () => (clearTimeout(t), resolve());
          });
        if (woken) continue; // woken meanwhile: what woke us may be committed now
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => ((news = true), resolve()), pollMs);
          wakeUp = () => (clearTimeout(t), resolve());
        });
      } catch (err) {
        log.error({ err: safeError(err) }, "webhook dispatcher loop error; retrying shortly");
        await new Promise((r) => setTimeout(r, pollMs));
      }
    }
  };

  const unlisten = await o.store.listen(WEBHOOK_CHANNEL, wake);
  const reaper = setInterval(() => {
    void reapExpiredLeases(o.store, now())
      .then((n) => (n ? (log.warn({ count: n }, "cleared webhook leases that expired (a dispatcher died or stalled)"), wake()) : undefined))
      .catch(() => {});
  }, Math.max(1_000, Math.floor(leaseMs / 2)));
  const heartbeat = setInterval(() => {
    const until = new Date(now().getTime() + leaseMs);
    void extendLeases(o.store, id, [...held], until).catch((err: unknown) => log.warn({ err: safeError(err) }, "webhook lease heartbeat failed"));
  }, Math.max(50, Math.floor(leaseMs / 3)));
  const done = loop();
  log.info("webhook dispatcher started");

  return {
    id,
    wake,
    stop: async (graceMs = 10_000) => {
      stopping = true;
      clearInterval(reaper);
      refill();
      await done;
      const queued = [...load.values()].flatMap((l) => l.queue.splice(0, l.queue.length).map((j) => j.seq));
      active -= queued.length;
      await releaseDeliveries(o.store, id, queued, now()).catch(() => {});
      queued.forEach((s) => held.delete(s));
      await Promise.race([
        new Promise<void>((r) => (posting === 0 ? r() : (allPosted = r))),
        new Promise((r) => setTimeout(r, graceMs).unref()),
      ]);
      // Everything tried is recorded before the leases go back (a finished flush leaves a small
      // remainder to its timer, so flush until nothing is left). A write still failing gets
      // three more tries; then those deliveries are tried again once their leases are released.
      for (let retries = 0; pending.length || flushes.size; ) {
        if (retryTimer) {
          clearTimeout(retryTimer);
          retryTimer = null;
          if (++retries > 3) break;
          await new Promise((r) => setTimeout(r, 250 * retries));
        }
        flush();
        await Promise.all(flushes);
      }
      if (retryTimer) clearTimeout(retryTimer);
      if (flushTimer) clearTimeout(flushTimer);
      for (const t of timers) clearTimeout(t);
      clearInterval(heartbeat);
      await releaseDeliveries(o.store, id, [...held], now()).catch(() => {});
      await unlisten().catch(() => {});
      client.close();
      log.info("webhook dispatcher stopped");
    },
  };
}
