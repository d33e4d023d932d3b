/**
 * DKIM signatures checked by an independent verifier (mailauth) against keys we generate and
 * publish through its resolver hook (no real DNS): every case of the composer's table passes
 * with rsa-sha256 and ed25519-sha256, and tampering with the body, a signed header or the From
 * count makes verification fail.
 */
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { beforeAll, describe, expect, it } from "vitest";
import { generateDkimKey, type DkimKeyPair } from "../../src/dkim/keys.js";
import { signMessage, type DkimSigningKey } from "../../src/dkim/sign.js";
import { composeMessage, type ComposeInput } from "../../src/mime/compose.js";
import { cases, mailbox } from "../mime/cases.js";

const records = new Map<string, string>();
const resolver = async (name: string, type: string) => {
  const value = type === "TXT" ? records.get(name.toLowerCase()) : undefined;
  if (value === undefined) throw Object.assign(new Error(`no ${type} for ${name}`), { code: "ENOTFOUND" });
  return [[value]];
};

async function results(message: Buffer): Promise<string[]> {
  const r = await dkimVerify(message, { resolver, curTime: new Date() });
  return r.results.map((x) => `${x.signingDomain}/${x.status.result}${x.status.comment ? ` (${x.status.comment})` : ""}`);
}

let rsa: DkimKeyPair;
let ed: DkimKeyPair;
let keys: Record<"rsa" | "ed25519", DkimSigningKey>;

beforeAll(async () => {
  [rsa, ed] = await Promise.all([generateDkimKey("rsa"), generateDkimKey("ed25519")]);
  records.set("s1._domainkey.example.com", rsa.dnsRecord);
  records.set("ed1._domainkey.example.com", ed.dnsRecord);
  keys = {
    rsa: { domain: "example.com", selector: "s1", privateKey: rsa.privateKey, algorithm: "rsa-sha256" },
    ed25519: { domain: "example.com", selector: "ed1", privateKey: ed.privateKey, algorithm: "ed25519-sha256" },
  };
});

const simple: ComposeInput = {
  from: mailbox("Alice <alice@example.com>"),
  to: [mailbox("Bob <bob@example.org>")],
  subject: "Signed",
  text: "Hello Bob,\n\nthis message is signed.\n",
  html: "<p>Hello Bob,</p><p>this message is signed.</p>",
  headers: [["X-Campaign", "42"]],
};

describe("signMessage", () => {
  describe.each(["rsa", "ed25519"] as const)("with %s", (alg) => {
    it.each(cases)("signs '$name' so mailauth verifies it", async (c) => {
      const signed = signMessage(composeMessage(c.input), [keys[alg]]);
      expect(await results(signed)).toEqual(["example.com/pass"]);
    });

    it("fails verification when one body byte changes", async () => {
      const signed = signMessage(composeMessage(simple), [keys[alg]]);
      const at = signed.indexOf("this message is signed");
      signed[at] = "T".charCodeAt(0);
      expect(await results(signed)).toEqual(["example.com/neutral (body hash did not verify)"]);
    });

    it("fails verification when a signed header changes", async () => {
      const signed = signMessage(composeMessage(simple), [keys[alg]]).toString("latin1");
      const tampered = Buffer.from(signed.replace("Subject: Signed", "Subject: Signet"), "latin1");
      expect(await results(tampered)).toEqual(["example.com/fail (bad signature)"]);
    });

    it.each([
      ["above the original", (m: string) => m.replace(/^From: /m, "From: Mallory <mallory@example.net>\r\nFrom: ")],
      ["below the original", (m: string) => m.replace(/^(From: .*\r\n)/m, "$1From: Mallory <mallory@example.net>\r\n")],
      ["at the top of the message", (m: string) => `From: Mallory <mallory@example.net>\r\n${m}`],
    ])("fails verification when a second From is added %s (From is over-signed)", async (_, add) => {
      const signed = signMessage(composeMessage(simple), [keys[alg]]).toString("latin1");
      expect(await results(Buffer.from(add(signed), "latin1"))).not.toContain("example.com/pass");
    });

    it.each([
      ["Subject", "Subject: URGENT: wire the money today"],
      ["Reply-To (absent from the message)", "Reply-To: attacker@evil.example"],
      ["Cc (absent from the message)", "Cc: victim2@example.net"],
      ["To", "To: victim2@example.net"],
      ["Date", "Date: Mon, 1 Jan 2035 00:00:00 +0000"],
      ["Message-ID", "Message-ID: <replayed@evil.example>"],
      ["Content-Type", "Content-Type: text/html"],
      ["Content-Transfer-Encoding", "Content-Transfer-Encoding: base64"],
      ["In-Reply-To", "In-Reply-To: <thread@evil.example>"],
    ])("fails verification when a %s is added above the message (a replay showing the attacker's field)", async (_, field) => {
      const signed = signMessage(composeMessage(simple), [keys[alg]]).toString("latin1");
      expect(await results(Buffer.from(`${field}\r\n${signed}`, "latin1"))).not.toContain("example.com/pass");
    });

    it("still verifies when an unsigned header changes", async () => {
      const signed = signMessage(composeMessage(simple), [keys[alg]]).toString("latin1");
      const changed = Buffer.from(signed.replace("X-Campaign: 42", "X-Campaign: 43"), "latin1");
      expect(await results(changed)).toEqual(["example.com/pass"]);
    });
  });

  it("prepends one signature per key, each verifying on its own", async () => {
    const message = composeMessage(simple);
    const signed = signMessage(message, [keys.rsa, keys.ed25519]);
    const head = signed.toString("latin1", 0, signed.length - message.length);
    expect(head.match(/^DKIM-Signature:/gm)).toHaveLength(2);
    expect(head).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256;/);
    expect(signed.subarray(signed.length - message.length).equals(message)).toBe(true);
    expect(await results(signed)).toEqual(["example.com/pass", "example.com/pass"]);
  });

  it("lists each signed header, the reader-facing ones once more than they occur, and folds every line to 78", () => {
    const message = composeMessage({ ...simple, cc: [mailbox("carol@example.org")], replyTo: [mailbox("help@example.com")] });
    const signature = signMessage(message, [keys.rsa], { now: new Date("2026-11-23T12:00:00Z") }).toString("latin1", 0, 2000);
    const unfolded = signature.slice(0, signature.indexOf("\r\nFrom:")).replace(/\r\n /g, " ");
    expect(unfolded).toMatch(/ c=relaxed\/relaxed; d=example\.com; s=s1; t=1795435200; /);
    expect(unfolded.replace(/\s/g, "")).toContain(
      "h=from:from:to:to:cc:cc:subject:subject:date:date:message-id:message-id:reply-to:reply-to:in-reply-to:references:mime-version:mime-version:content-type:content-type:content-transfer-encoding;",
    );
    for (const line of signature.split("\r\n").slice(0, 8)) expect(line.length).toBeLessThanOrEqual(78);
  });

  it("signs only the headers it is told to, when told", async () => {
    const signed = signMessage(composeMessage(simple), [keys.ed25519], { headers: ["From", "Subject", "X-Campaign"] });
    expect(signed.toString("latin1").replace(/\r\n /g, "")).toMatch(/h=from:from:subject:subject:x-campaign;/);
    expect(await results(signed)).toEqual(["example.com/pass"]);
  });

  it("signs repeated headers bottom-up, so swapping two instances breaks the signature", async () => {
    const input = { ...simple, headers: [["X-Dup", "first"], ["X-Dup", "second"]] as [string, string][] };
    const signed = signMessage(composeMessage(input), [keys.ed25519], { headers: ["from", "x-dup"] });
    expect(signed.toString("latin1").replace(/\r\n /g, "")).toMatch(/h=from:from:x-dup:x-dup;/);
    expect(await results(signed)).toEqual(["example.com/pass"]);
    const swapped = signed.toString("latin1").replace("X-Dup: first", "X-Dup: tmp").replace("X-Dup: second", "X-Dup: first").replace("X-Dup: tmp", "X-Dup: second");
    expect(await results(Buffer.from(swapped, "latin1"))).toEqual(["example.com/fail (bad signature)"]);
  });

  it("covers List-Unsubscribe and List-Unsubscribe-Post when present (RFC 8058 §4), over-signed so an added one breaks it", async () => {
    const input: ComposeInput = {
      ...simple,
      listUnsubscribe: { uris: ["https://mail.example.com/unsubscribe/tok", "mailto:u+tok@bounces.example.com"], oneClick: true },
    };
    const signed = signMessage(composeMessage(input), [keys.ed25519]);
    const text = signed.toString("latin1");
    expect(text.slice(0, text.indexOf("\r\nFrom:")).replace(/\s+/g, "")).toContain(
      "h=from:from:to:to:cc:subject:subject:date:date:message-id:message-id:reply-to:in-reply-to:references:mime-version:mime-version:content-type:content-type:content-transfer-encoding:list-unsubscribe:list-unsubscribe:list-unsubscribe-post:list-unsubscribe-post;",
    );
    expect(await results(signed)).toEqual(["example.com/pass"]);
    const redirected = text.replace("https://mail.example.com/", "https://evil.example/");
    expect(await results(Buffer.from(redirected, "latin1"))).toEqual(["example.com/fail (bad signature)"]);
    const added = text.replace(/^(From: )/m, "List-Unsubscribe: <https://evil.example/u>\r\n$1");
    expect(await results(Buffer.from(added, "latin1"))).not.toContain("example.com/pass");
  });

  it("does not list List-Unsubscribe when the message has none", () => {
    const head = signMessage(composeMessage(simple), [keys.ed25519]).toString("latin1", 0, 600);
    expect(head).not.toMatch(/list-unsubscribe/);
  });

  it("accepts a Unicode signing domain and signs as its A-label", async () => {
    records.set("s1._domainkey.xn--bcher-kva.example", rsa.dnsRecord);
    const input = { ...simple, from: mailbox("Bücher <info@bücher.example>") };
    const signed = signMessage(composeMessage(input), [{ ...keys.rsa, domain: "bücher.example" }]);
    expect(signed.toString("latin1")).toMatch(/d=xn--bcher-kva\.example;/);
    expect(await results(signed)).toEqual(["xn--bcher-kva.example/pass"]);
  });

  it.each([
    ["an rsa-sha256 key that is Ed25519", () => ({ ...keys.ed25519, algorithm: "rsa-sha256" as const })],
    ["a selector with a semicolon", () => ({ ...keys.rsa, selector: "s1; x=1" })],
    ["a domain that is no domain", () => ({ ...keys.rsa, domain: "exa mple.com" })],
  ])("refuses %s", (_, key) => {
    expect(() => signMessage(composeMessage(simple), [key()])).toThrow(RangeError);
  });

  it("returns the message unchanged when there is no key", () => {
    const message = composeMessage(simple);
    expect(signMessage(message, [])).toBe(message);
  });
});
