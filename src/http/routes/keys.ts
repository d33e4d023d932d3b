import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { createKey, listKeys, revokeKey } from "../../keys/keys.js";
import type { AppDeps, AppEnv } from "../context.js";
import { accountOf, requireScope } from "../middleware.js";
import { displayName, pageQuery, pageResponse, pick, security } from "./shared.js";

const scope = z.enum(["send", "full"]).openapi({ description: "`send`: submitting messages only (POST /messages, /messages/raw, /messages/batch); `full`: everything in the account" });

export const createdKeySchema = z
  .object({ id: z.string(), name: z.string(), key: z.string(), prefix: z.string(), scopes: z.array(z.string()), created_at: z.string() })
  .openapi("CreatedApiKey");

const keySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.string()),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi("ApiKey");

const idParam = z.object({ id: z.string().max(64).openapi({ param: { name: "id", in: "path" } }) });

export function keyRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const full = requireScope(deps, "full");

  const create = createRoute({
    method: "post",
    path: "/api-keys",
    tags: ["api-keys"],
    summary: "Create an API key for the caller's account; the key is shown only in this response",
    security,
    middleware: [full] as const,
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .strictObject({ name: displayName, scopes: z.array(scope).min(1).max(2) })
              .openapi("CreateApiKey"),
          },
        },
      },
    },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: createdKeySchema } } },
      ...pick(400, 401, 403, 413, 415, 422),
    },
  });
  app.openapi(create, async (c) => {
    const { name, scopes } = c.req.valid("json");
    return c.json(await createKey(deps.store.db, { accountId: accountOf(c), name, scopes: [...new Set(scopes)] }), 201);
  });

  const list = createRoute({
    method: "get",
    path: "/api-keys",
    tags: ["api-keys"],
    summary: "List the account's keys (never the keys themselves)",
    security,
    middleware: [full] as const,
    request: { query: pageQuery("apiKey") },
    responses: {
      200: pageResponse(keySchema),
      ...pick(400, 401, 403),
    },
  });
  app.openapi(list, async (c) => c.json(await listKeys(deps.store.db, accountOf(c), c.req.valid("query")), 200));

  const revoke = createRoute({
    method: "delete",
    path: "/api-keys/{id}",
    tags: ["api-keys"],
    summary: "Revoke a key; it stops working at once",
    security,
    middleware: [full] as const,
    request: { params: idParam },
    responses: {
      200: { description: "Revoked", content: { "application/json": { schema: keySchema } } },
      ...pick(401, 403, 404),
    },
  });
  app.openapi(revoke, async (c) => c.json(await revokeKey(deps.store.db, accountOf(c), c.req.valid("param").id), 200));
}
