import { describe, expect, it } from "vitest";
import { idPattern, isId, newId } from "../../src/lib/ids.js";

describe("newId", () => {
  it("sorts ids made in one millisecond in the order they were made (a batch lists newest first, as sent)", () => {
    const ms = Date.parse("2026-12-01T12:00:00Z");
    const ids = Array.from({ length: 2_000 }, () => newId("message", ms));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(isId("message", id)).toBe(true);
  });

  it("orders by time first, and draws fresh randomness for each new millisecond", () => {
    const a = newId("event", 1_000);
    const b = newId("event", 1_001);
    const c = newId("event", 1_001);
    expect([b, a, c].sort()).toEqual([a, b, c]);
    // Not a counter carried over from the previous millisecond.
    const rand = (id: string) => id.slice(-16);
    const runs = Array.from({ length: 20 }, (_, i) => rand(newId("event", 2_000 + i)));
    expect(new Set(runs.map((r) => r.slice(0, 8))).size).toBeGreaterThan(15);
  });

  it("is the shape isId and list cursors accept", () => {
    expect(idPattern("apiKey").test(newId("apiKey"))).toBe(true);
    expect(isId("apiKey", newId("message"))).toBe(false);
    expect(isId("message", "msg_\u0000")).toBe(false);
  });
});
