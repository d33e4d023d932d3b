import { describe, expect, it } from "vitest";
import { limitSize } from "../../src/db/limit.js";

describe("limitSize (a LIMIT written into a statement's text)", () => {
  it("never asks for more than was asked, nor for less than 7/8 of it", () => {
    for (const max of [500, 1024]) {
      for (let n = 1; n <= max; n++) {
        const size = limitSize(n, max);
        expect(size).toBeLessThanOrEqual(n);
        expect(size).toBeGreaterThanOrEqual(Math.floor((n * 7) / 8));
      }
    }
  });

  it("caps at the maximum and takes at least one row", () => {
    expect(limitSize(10_000, 500)).toBe(500);
    expect(limitSize(0, 500)).toBe(1);
    expect(limitSize(-5, 500)).toBe(1);
    expect(limitSize(2.9, 500)).toBe(2);
  });

  it("uses a few dozen sizes in all, so a connection prepares a few dozen texts", () => {
    const sizes = new Set(Array.from({ length: 1100 }, (_, i) => limitSize(i + 1, 1024)));
    expect(sizes.size).toBeLessThanOrEqual(55);
  });
});
