/**
 * LISTEN/NOTIFY is what wakes an idle worker (issue #4): with a fallback poll of 30 s, an idle
 * worker runs (nearly) no statements, and a message accepted meanwhile is delivered at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countingStore, engineHarness, type EngineHarness } from "../helpers/engine.js";
import { startMailServer, type MailServer } from "../helpers/mail-server.js";

let h: EngineHarness;
let mx: MailServer;
beforeAll(async () => {
  h = await engineHarness();
  mx = await startMailServer();
  h.publish({ "wake.example": { MX: [{ preference: 10, exchange: "mx.wake.example" }] }, "mx.wake.example": { A: ["127.0.0.1"] } });
});
afterAll(async () => {
  await h.close();
  await mx.close();
});

describe("an idle worker", () => {
  it("sits idle without polling, and a NOTIFY from an accepted message starts its delivery at once", async () => {
    // The worker's statements, counted on the real store.
    const counting = countingStore(h.store);
    const w = await h.worker({ store: counting.store, smtpPort: mx.port, pollMs: 30_000, leaseMs: 60_000 });
    await new Promise((r) => setTimeout(r, 300)); // its first look found nothing; it sleeps
    const idleFrom = counting.statements;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(counting.statements - idleFrom).toBeLessThanOrEqual(1); // the lease reaper at most, no poll

    const t0 = Date.now();
    const m = await h.send({ to: "user@wake.example" });
    expect((await h.settle(m.id))[0]!.status).toBe("delivered");
    expect(Date.now() - t0).toBeLessThan(3_000); // the fallback poll would be 30 s
    expect(mx.received.map((r) => r.to)).toEqual([["user@wake.example"]]);
    await w.stop();
  });
});
