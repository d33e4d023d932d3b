import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { createDomain, deleteDomain, getDomain, listDomains } from "../../domains/domains.js";
import { DKIM_ALGORITHMS } from "../../domains/keys.js";
import { RECORD_PURPOSES, RECORD_STATES, type RecordSettings } from "../../domains/records.js";
import { verifyDomain } from "../../domains/verify.js";
import { createResolver, type Resolver } from "../../dns/resolver.js";
import { serviceSecret } from "../../lib/secret.js";
import type { AppDeps, AppEnv } from "../context.js";
import { accountOf, requireScope } from "../middleware.js";
import { pageQuery, pageResponse, pick, problemSchema, security } from "./shared.js";

const recordSchema = z
  .object({
    purpose: z.enum(RECORD_PURPOSES),
    type: z.literal("TXT"),
    name: z.string().openapi({ example: "pl7k2mq9xa._domainkey.example.com" }),
    value: z.string().openapi({ example: "v=DKIM1; k=rsa; p=MIIBIjANBgkqh…" }),
    required: z.boolean().openapi({ description: "Whether the domain's `verified` status needs it (DKIM and SPF); return_path and dmarc are advice" }),
    status: z.enum(RECORD_STATES).openapi({ description: "`pending`: not checked or not published yet; `verified`; `invalid`: something else is published there (see `detail`)" }),
    checked_at: z.string().nullable(),
    detail: z.string().nullable().openapi({ description: "What the last check found" }),
  })
  .openapi("DomainRecord");

export const domainSchema = z
  .object({
    id: z.string().openapi({ example: "dom_01jd2…" }),
    name: z.string().openapi({ description: "Lower-case ASCII; internationalised names in punycode", example: "example.com" }),
    status: z.enum(["pending", "verified"]).openapi({ description: "`verified` once the DKIM and SPF records are" }),
    dkim: z.object({ selector: z.string(), algorithm: z.enum(DKIM_ALGORITHMS) }),
    records: z.array(recordSchema),
    created_at: z.string(),
    verified_at: z.string().nullable(),
  })
  .openapi("Domain");

const idParam = z.object({ id: z.string().max(64).openapi({ param: { name: "id", in: "path" } }) });

const dnsUnavailable = {
  description: "A DNS look-up failed temporarily (SERVFAIL, timeout); nothing was changed",
  content: { "application/problem+json": { schema: problemSchema } },
};

export function domainRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const full = requireScope(deps, "full");
  const settings: RecordSettings = { heloName: deps.config.HELO_NAME, returnPathDomain: deps.config.RETURN_PATH_DOMAIN };
  // Built on first use: the document-only app (npm run openapi) never touches either.
  let resolver: Resolver | undefined;
  const verifier = () => (resolver ??= createResolver({ servers: deps.config.DNS_SERVERS, cache: false, timeoutMs: 2500, tries: 2 }));

  const create = createRoute({
    method: "post",
    path: "/domains",
    tags: ["domains"],
    summary: "Add a sending domain: generates its DKIM key and returns the DNS records to publish",
    description: [
      "Records (all TXT): `dkim` at `<selector>._domainkey.<name>` = `v=DKIM1; k=rsa|ed25519; p=<public key>`;",
      "`spf` at `<name>` = `v=spf1 a:<HELO_NAME> ~all` (or add `a:<HELO_NAME>` to your existing SPF record);",
      "`return_path` at `_postline.<name>` = `v=pl1; rp=<RETURN_PATH_DOMAIN>` (only when RETURN_PATH_DOMAIN is configured);",
      "`dmarc` at `_dmarc.<name>` = `v=DMARC1; p=none; rua=mailto:dmarc-reports@<name>` (a suggestion).",
      "The domain becomes `verified` when `dkim` and `spf` are; `return_path` and `dmarc` are checked and shown only.",
      "A name belongs to at most one account: 409 when any account has it. The private key is stored encrypted and never returned.",
    ].join(" "),
    security,
    middleware: [full] as const,
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .strictObject({
                name: z.string().max(255).openapi({ example: "example.com", description: "Internationalised names are stored as punycode" }),
                algorithm: z.enum(DKIM_ALGORITHMS).optional().openapi({ description: "Default rsa-sha256 (2048-bit); ed25519-sha256 per RFC 8463" }),
              })
              .openapi("CreateDomain"),
          },
        },
      },
    },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: domainSchema } } },
      ...pick(400, 401, 403, 409, 413, 415, 422),
    },
  });
  app.openapi(create, async (c) => {
    const { name, algorithm } = c.req.valid("json");
    const secret = await serviceSecret(deps.config);
    return c.json(await createDomain(deps.store.db, secret, settings, { accountId: accountOf(c), name, algorithm }), 201);
  });

  const list = createRoute({
    method: "get",
    path: "/domains",
    tags: ["domains"],
    summary: "List the account's sending domains, newest first",
    security,
    middleware: [full] as const,
    request: { query: pageQuery("domain") },
    responses: {
      200: pageResponse(domainSchema),
      ...pick(400, 401, 403),
    },
  });
  app.openapi(list, async (c) => c.json(await listDomains(deps.store.db, settings, accountOf(c), c.req.valid("query")), 200));

  const get = createRoute({
    method: "get",
    path: "/domains/{id}",
    tags: ["domains"],
    summary: "A sending domain with its records and their last verified state",
    security,
    middleware: [full] as const,
    request: { params: idParam },
    responses: {
      200: { description: "The domain", content: { "application/json": { schema: domainSchema } } },
      ...pick(401, 403, 404),
    },
  });
  app.openapi(get, async (c) => c.json(await getDomain(deps.store.db, settings, accountOf(c), c.req.valid("param").id), 200));

  const verify = createRoute({
    method: "post",
    path: "/domains/{id}/verify",
    tags: ["domains"],
    summary: "Look the records up in DNS now and record each one's state",
    description: [
      "Each record is looked up through DNS_SERVERS, without a cache. `dkim` is verified when a key record there carries our `p=`",
      "(whitespace and split strings allowed; another key → `invalid`). `spf` is verified when the one `v=spf1` record at the name",
      "authorises `a:<HELO_NAME>` or `include:<RETURN_PATH_DOMAIN>` with a pass qualifier before its `all` term (two SPF records → `invalid`).",
      "`return_path` needs `v=pl1` with our `rp=`; `dmarc` one `v=DMARC1` record. A record not found is `pending`.",
      "Definite answers count both ways (a removed record makes a verified domain `pending` again). When any look-up fails",
      "temporarily (SERVFAIL, timeout) the answer is 503 and nothing is changed.",
    ].join(" "),
    security,
    middleware: [full] as const,
    request: { params: idParam },
    responses: {
      200: { description: "The domain after the check", content: { "application/json": { schema: domainSchema } } },
      ...pick(401, 403, 404),
      503: dnsUnavailable,
    },
  });
  app.openapi(verify, async (c) => c.json(await verifyDomain(deps.store.db, verifier(), settings, accountOf(c), c.req.valid("param").id), 200));

  const remove = createRoute({
    method: "delete",
    path: "/domains/{id}",
    tags: ["domains"],
    summary: "Delete a sending domain and its key; messages from it are no longer signed",
    security,
    middleware: [full] as const,
    request: { params: idParam },
    responses: {
      200: {
        description: "Deleted",
        content: { "application/json": { schema: z.object({ id: z.string(), name: z.string(), deleted: z.literal(true) }).openapi("DeletedDomain") } },
      },
      ...pick(401, 403, 404),
    },
  });
  app.openapi(remove, async (c) => c.json(await deleteDomain(deps.store.db, accountOf(c), c.req.valid("param").id), 200));
}
