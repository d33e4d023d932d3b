import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { createAccount, listAccounts } from "../../accounts/accounts.js";
import type { AppDeps, AppEnv } from "../context.js";
import { requireScope } from "../middleware.js";
import { createdKeySchema } from "./keys.js";
import { displayName, pageQuery, pageResponse, pick, security } from "./shared.js";

const account = z.object({ id: z.string(), name: z.string(), created_at: z.string() }).openapi("Account");
const accountCreated = account.extend({ api_key: createdKeySchema }).openapi("AccountCreated");

export function accountRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const admin = requireScope(deps, "admin");

  const create = createRoute({
    method: "post",
    path: "/accounts",
    tags: ["accounts"],
    summary: "Create an account and its first full-scope API key (admin)",
    security,
    middleware: [admin] as const,
    request: {
      body: {
        required: true,
        content: { "application/json": { schema: z.strictObject({ name: displayName }).openapi("CreateAccount") } },
      },
    },
    responses: {
      201: { description: "Created; `api_key.key` is shown only here", content: { "application/json": { schema: accountCreated } } },
      ...pick(400, 401, 403, 413, 415, 422),
    },
  });
  app.openapi(create, async (c) => c.json(await createAccount(deps.store.db, c.req.valid("json").name), 201));

  const list = createRoute({
    method: "get",
    path: "/accounts",
    tags: ["accounts"],
    summary: "List accounts, newest first (admin)",
    security,
    middleware: [admin] as const,
    request: { query: pageQuery("account") },
    responses: {
      200: pageResponse(account),
      ...pick(400, 401, 403),
    },
  });
  app.openapi(list, async (c) => c.json(await listAccounts(deps.store.db, c.req.valid("query")), 200));
}
