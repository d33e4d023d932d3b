import { describe, expect, it } from "vitest";
import { safeError } from "../../src/lib/logger.js";

describe("safeError", () => {
  it("keeps a query error's cause and frames but never its parameters", () => {
    const cause = Object.assign(new Error('duplicate key value violates unique constraint "messages_pkey"'), { code: "23505" });
    const err = Object.assign(new Error("Failed query: insert into messages … \nparams: secret message body,bob@example.org"), {
      name: "DrizzleQueryError",
      query: "insert into messages …",
      params: ["secret message body", "bob@example.org"],
      cause,
    });
    const shown = safeError(err);
    expect(shown).toMatchObject({ type: "DrizzleQueryError", code: "23505", message: expect.stringContaining("duplicate key") });
    expect(JSON.stringify(shown)).not.toContain("secret message body");
    expect(JSON.stringify(shown)).not.toContain("bob@example.org");
  });

  it("keeps an ordinary error's message", () => {
    expect(safeError(new TypeError("x is undefined"))).toMatchObject({ type: "TypeError", message: "x is undefined" });
  });
});
