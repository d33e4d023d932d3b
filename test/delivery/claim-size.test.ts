import { describe, expect, it } from "vitest";
import { claimSize } from "../../src/delivery/queue/claim.js";

describe("claimSize (the LIMIT written into a claim's text)", () => {
  it("never asks for more than was asked, nor for less than 7/8 of it (below 500)", () => {
    for (let n = 1; n <= 500; n++) {
      const size = claimSize(n);
      expect(size).toBeLessThanOrEqual(n);
      expect(size).toBeGreaterThanOrEqual(Math.floor((n * 7) / 8));
    }
  });

  it("caps at 500 and takes at least one row", () => {
    expect(claimSize(10_000)).toBe(500);
    expect(claimSize(0)).toBe(1);
    expect(claimSize(2.9)).toBe(2);
  });

  it("uses a few dozen sizes in all, so a connection prepares a few dozen texts", () => {
    const sizes = new Set(Array.from({ length: 600 }, (_, i) => claimSize(i + 1)));
    expect(sizes.size).toBeLessThanOrEqual(50);
  });
});
