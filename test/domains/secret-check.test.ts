/**
 * The service refuses to start with a SECRET_KEY that does not open the DKIM keys sealed so far
 * (every send from an existing domain would be a 500 otherwise).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/db/client.js";
import { accounts } from "../../src/db/schema.js";
import { createDomain } from "../../src/domains/domains.js";
import { forgetPrivateKey } from "../../src/domains/keys.js";
import { assertSecretOpensKeys } from "../../src/domains/signing.js";
import { secretFromString } from "../../src/lib/secret.js";
import { testStore } from "../helpers/store.js";

let store: Store;
beforeAll(async () => {
  store = await testStore();
  await store.db.insert(accounts).values({ id: "acct_secret", name: "secret" });
});
afterAll(() => store.close());

describe("assertSecretOpensKeys", () => {
  it("passes with no domains, and with the secret the keys were sealed under; names SECRET_KEY with another", async () => {
    const made = secretFromString("m".repeat(40));
    await expect(assertSecretOpensKeys(store, secretFromString("x".repeat(40)))).resolves.toBeUndefined(); // nothing sealed yet
    const d = await createDomain(store.db, made, { heloName: "mta.postline.test" }, { accountId: "acct_secret", name: "sealed.example.com", algorithm: "ed25519-sha256" });
    await expect(assertSecretOpensKeys(store, made)).resolves.toBeUndefined();
    forgetPrivateKey(d.id); // as in a new process: nothing decrypted yet
    await expect(assertSecretOpensKeys(store, secretFromString("o".repeat(40)))).rejects.toThrow(/^SECRET_KEY does not open the DKIM keys/);
  });
});
