import { describe, expect, it } from "vitest";
import { WriteBackoff } from "../../src/lib/backoff.js";

describe("WriteBackoff", () => {
  it("waits 100 ms doubling to its cap while failures last less than the give-up time, then gives up once and starts afresh", () => {
    const b = new WriteBackoff(10_000, 1_000);
    const waits = [0, 100, 300, 700, 1_500, 3_100, 6_300].map((t) => b.failed(1_000 + t));
    expect(waits).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    expect(b.failed(1_000 + 10_001)).toBeNull(); // failing for longer than 10 s: drop the batch
    expect(b.failed(20_000)).toBe(100); // the next failure is a new run
  });

  it("starts afresh after a write goes through", () => {
    const b = new WriteBackoff(1_000);
    expect([b.failed(0), b.failed(100)]).toEqual([100, 200]);
    b.succeeded();
    expect(b.failed(5_000)).toBe(100);
    expect(b.failed(5_900)).toBe(200); // 900 ms into the new run: still within the give-up time
  });
});
