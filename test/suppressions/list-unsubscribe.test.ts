/**
 * The List-Unsubscribe URIs for one recipient: a PUBLIC_URL link whose token verifies and names
 * that recipient, then a mailto to its `u+` VERP address only when RETURN_PATH_DOMAIN is set.
 */
import { describe, expect, it } from "vitest";
import { parseVerpAddress } from "../../src/inbound/verp.js";
import { newId } from "../../src/lib/ids.js";
import { listUnsubscribeUris } from "../../src/suppressions/list-unsubscribe.js";
import { verifyUnsubscribeToken } from "../../src/suppressions/unsubscribe-token.js";

const key = Buffer.alloc(32, 1);
const verpKey = Buffer.alloc(32, 2);
const claims = { account: newId("account"), email: "Bob@example.org", message: newId("message"), recipient: newId("recipient") };

describe("listUnsubscribeUris", () => {
  it("links to PUBLIC_URL/unsubscribe/<token> (any trailing slash dropped) with a token naming the recipient", async () => {
    const [url, ...rest] = await listUnsubscribeUris({ key, publicUrl: "https://mail.example.com/postline/" }, claims);
    expect(rest).toEqual([]);
    expect(url).toMatch(/^https:\/\/mail\.example\.com\/postline\/unsubscribe\/[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(await verifyUnsubscribeToken(key, url!.slice(url!.lastIndexOf("/") + 1))).toEqual(claims);
    expect(await verifyUnsubscribeToken(verpKey, url!.slice(url!.lastIndexOf("/") + 1))).toBeNull();
  });

  it("adds mailto:u+<VERP token>@RETURN_PATH_DOMAIN, which the inbound listener maps back to the recipient", async () => {
    const uris = await listUnsubscribeUris({ key, publicUrl: "https://mail.example.com", verp: { key: verpKey, domain: "bounces.example.com" } }, claims);
    expect(uris).toHaveLength(2);
    const mail = uris[1]!.replace(/^mailto:/, "");
    expect(mail.length).toBeLessThanOrEqual(64 + 1 + "bounces.example.com".length);
    expect(parseVerpAddress(verpKey, mail, "bounces.example.com")).toEqual({ ok: true, kind: "unsubscribe", recipientId: claims.recipient });
  });

  it("fits a List-Unsubscribe line (998 octets) even for the longest address", async () => {
    const email = `${"l".repeat(64)}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(61)}.example`.slice(0, 254);
    const [url] = await listUnsubscribeUris({ key, publicUrl: "https://mail.example.com" }, { ...claims, email });
    expect(url!.length + 3).toBeLessThan(998);
  });
});
