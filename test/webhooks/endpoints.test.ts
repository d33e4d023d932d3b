import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/db/client.js";
import { secretFromString } from "../../src/lib/secret.js";
import { endpointCache } from "../../src/webhooks/endpoints.js";
import { secret, webhookHarness } from "./harness.js";

let h: Awaited<ReturnType<typeof webhookHarness>>;
beforeAll(async () => {
  h = await webhookHarness();
});
afterEach(() => h.reset());
afterAll(() => h?.close());

/** The test store, counting the statements run through `rows`. */
const counted = (store: Store) => {
  const seen = { rows: 0 };
  return { seen, store: { ...store, rows: ((q, s) => (seen.rows++, store.rows(q, s))) as Store["rows"] } };
};

describe("the dispatcher's endpoints", () => {
  it("loads an endpoint's URL and key once, in one statement for several", async () => {
    const a = await h.webhook("http://127.0.0.1:9/a");
    const b = await h.webhook("http://127.0.0.1:9/b");
    const { seen, store } = counted(h.store);
    const cache = endpointCache(secret, store);

    const first = await cache.get([a.id, b.id, a.id]);
    expect(seen.rows).toBe(1);
    expect(first.get(a.id)).toMatchObject({ ok: true, target: { host: "127.0.0.1", port: 9, path: "/a" } });
    expect(first.get(b.id)).toMatchObject({ ok: true, target: { path: "/b" } });
    // The key is the one inside the whsec_ secret shown at creation.
    const key = Buffer.from(a.secret.slice("whsec_".length), "base64");
    expect((first.get(a.id) as { key: Buffer }).key.equals(key)).toBe(true);

    const again = await cache.get([b.id, a.id]);
    expect(seen.rows).toBe(1);
    expect(again.get(a.id)).toBe(first.get(a.id));
  });

  it("says why when the secret does not open (another SECRET_KEY) or the endpoint is gone, without the secret", async () => {
    const a = await h.webhook("http://127.0.0.1:9/a");
    const other = endpointCache(secretFromString(randomBytes(32).toString("base64url")), h.store);
    const got = await other.get([a.id, "wh_gone"]);
    expect(got.get(a.id)).toEqual({ ok: false, reason: expect.stringMatching(/cannot be opened/) });
    expect(JSON.stringify(got.get(a.id))).not.toContain(a.secret.slice("whsec_".length, 20));
    expect(got.get("wh_gone")).toEqual({ ok: false, reason: "the endpoint was deleted" });
  });
});
