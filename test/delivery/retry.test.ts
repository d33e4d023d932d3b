import { describe, expect, it } from "vitest";
import { nextRetry } from "../../src/delivery/retry.js";
import { bounceKind, classifyRcptReply, classifyReply } from "../../src/delivery/classify.js";

const policy = { schedule: [300_000, 600_000, 1_200_000], lifetimeMs: 5 * 86_400_000 };
const t0 = new Date("2026-11-23T00:00:00Z");

describe("nextRetry", () => {
  const cases: [number, number][] = [
    [1, 300_000],
    [2, 600_000],
    [3, 1_200_000],
    [9, 1_200_000], // the last delay repeats
  ];
  for (const [attempts, delay] of cases)
    it(`waits ${delay / 60_000} min after try ${attempts}, jitter aside`, () => {
      const d = nextRetry(policy, attempts, t0, t0, () => 0.5);
      expect(d).toEqual({ kind: "retry", at: new Date(t0.getTime() + delay) });
    });

  it("stays within ±10 % jitter", () => {
    const lo = nextRetry(policy, 1, t0, t0, () => 0);
    const hi = nextRetry(policy, 1, t0, t0, () => 0.999_999);
    expect(lo.kind === "retry" && lo.at.getTime() - t0.getTime()).toBe(270_000);
    expect(hi.kind === "retry" && hi.at.getTime() - t0.getTime()).toBe(330_000);
  });

  it("makes the last try at the end of the queue lifetime, counted from when the recipient was first due, then expires", () => {
    const deadline = new Date(t0.getTime() + 5 * 86_400_000);
    const late = new Date(deadline.getTime() - 60_000);
    // The next delay would overshoot: one more try at the deadline, not giving up 19 minutes early.
    expect(nextRetry(policy, 5, t0, late, () => 0.5)).toEqual({ kind: "retry", at: deadline });
    expect(nextRetry(policy, 6, t0, deadline, () => 0.5)).toEqual({ kind: "expire" });
    // A message scheduled later starts its lifetime then.
    expect(nextRetry(policy, 5, late, late, () => 0.5).kind).toBe("retry");
  });

  it("moves along the schedule with the time in the queue when deferrals reached no server (no tries counted)", () => {
    const after = (ms: number) => {
      const d = nextRetry(policy, 0, t0, new Date(t0.getTime() + ms), () => 0.5);
      return d.kind === "retry" ? d.at.getTime() - (t0.getTime() + ms) : null;
    };
    expect([after(0), after(300_000), after(900_000), after(86_400_000)]).toEqual([300_000, 600_000, 1_200_000, 1_200_000]);
    // Tries counted still decide when they are further along.
    const d = nextRetry(policy, 3, t0, t0, () => 0.5);
    expect(d).toEqual({ kind: "retry", at: new Date(t0.getTime() + 1_200_000) });
  });
});

describe("classifyReply", () => {
  it("acts on the first digit of the code, never the text", () => {
    expect(classifyReply(250, "2.0.0", "5.1.1 looks bad but is fine").outcome).toBe("delivered");
    expect(classifyReply(451, "4.7.1", "greylisted").outcome).toBe("defer");
    expect(classifyReply(421, null, "closing").outcome).toBe("defer");
    expect(classifyReply(550, "5.1.1", "no such user").outcome).toBe("bounce");
    expect(classifyReply(554, "5.7.26", "DMARC").outcome).toBe("bounce");
  });

  it("takes a 552 to RCPT for a temporary refusal (RFC 5321 §4.5.3.1.10), other RCPT replies as any reply", () => {
    expect(classifyRcptReply(552, "5.5.3", "too many recipients")).toEqual({ outcome: "defer", reason: { code: 552, enhanced: "5.5.3", text: "too many recipients" } });
    expect(classifyRcptReply(550, "5.1.1", "no such user").outcome).toBe("bounce");
    expect(classifyRcptReply(452, "4.5.3", "too many recipients").outcome).toBe("defer");
    expect(classifyRcptReply(250, "2.1.5", "ok").outcome).toBe("delivered");
    expect(classifyReply(552, "5.3.4", "message too big").outcome).toBe("bounce"); // after DATA it is permanent
  });

  it("calls mailbox failures hard bounces and policy refusals soft", () => {
    expect(bounceKind("5.1.1")).toBe("hard");
    expect(bounceKind("5.1.10")).toBe("hard");
    expect(bounceKind("5.2.1")).toBe("hard");
    expect(bounceKind("5.7.26")).toBe("soft");
    expect(bounceKind("5.3.4")).toBe("soft");
  });

  it("without an enhanced code, calls only 550, 551 and 553 hard (a 501 is about our command, a 554 a policy)", () => {
    const kinds = [500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555].map((code) => [code, bounceKind(null, code)]);
    expect(kinds).toEqual([[500, "soft"], [501, "soft"], [502, "soft"], [503, "soft"], [504, "soft"], [550, "hard"], [551, "hard"], [552, "soft"], [553, "hard"], [554, "soft"], [555, "soft"]]);
    expect(bounceKind("5.1.1", 501)).toBe("hard"); // the enhanced code decides when there is one
  });

  it("defers on a code no final reply may carry (a 354 to RCPT or to the final dot, a 1xx): a protocol error, never a bounce", () => {
    for (const code of [101, 221, 354, 399]) expect([code, classifyReply(code, null, "odd").outcome]).toEqual([code, code === 221 ? "delivered" : "defer"]);
    expect(classifyRcptReply(354, null, "go ahead").outcome).toBe("defer");
  });
});
