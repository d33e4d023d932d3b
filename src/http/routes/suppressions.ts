import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { createSuppression, deleteSuppression, listSuppressions } from "../../suppressions/manage.js";
import { createSuppressionBody, deletedSuppression, listSuppressionsQuery, suppressionList, suppressionSchema } from "../../suppressions/schemas.js";
import type { AppDeps, AppEnv } from "../context.js";
import { accountOf, requireScope } from "../middleware.js";
import { pick, security } from "./shared.js";

const emailParam = z.object({
  email: z
    .string()
    .min(1)
    .max(320)
    .openapi({ param: { name: "email", in: "path" }, description: "The address, URL-encoded (`bob%40example.org`); case-insensitive", example: "bob@example.org" }),
});

const list = createRoute({
  method: "get",
  path: "/suppressions",
  tags: ["suppressions"],
  summary: "The account's suppression list, newest first",
  description: "Addresses never sent to: a message to one stores that recipient as `suppressed`. Filter by `reason`, or look one address up with `email`.",
  security,
  request: { query: listSuppressionsQuery },
  responses: {
    200: { description: "A page", content: { "application/json": { schema: suppressionList } } },
    ...pick(400, 401, 403),
  },
});

const create = createRoute({
  method: "post",
  path: "/suppressions",
  tags: ["suppressions"],
  summary: "Add an address to the suppression list",
  description: "201 with the new entry; 200 with the existing entry (its first reason and time kept) when the address is already on the list.",
  security,
  request: { body: { required: true, content: { "application/json": { schema: createSuppressionBody } } } },
  responses: {
    201: { description: "Added", content: { "application/json": { schema: suppressionSchema } } },
    200: { description: "Already on the list", content: { "application/json": { schema: suppressionSchema } } },
    ...pick(400, 401, 403, 413, 415, 422),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/suppressions/{email}",
  tags: ["suppressions"],
  summary: "Remove an address from the suppression list; messages to it are delivered again",
  security,
  request: { params: emailParam },
  responses: {
    200: { description: "Removed", content: { "application/json": { schema: deletedSuppression } } },
    ...pick(401, 403, 404),
  },
});

/** GET/POST/DELETE /suppressions (`full` scope, the caller's account only). */
export function suppressionRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const full = requireScope(deps, "full");
  app.openapi({ ...list, middleware: [full] as const }, async (c) => c.json(await listSuppressions(deps.store, accountOf(c), c.req.valid("query")), 200));
  app.openapi({ ...create, middleware: [full] as const }, async (c) => {
    const { entry, created } = await createSuppression(deps.store, accountOf(c), c.req.valid("json"));
    return created ? c.json(entry, 201) : c.json(entry, 200);
  });
  app.openapi({ ...remove, middleware: [full] as const }, async (c) => c.json(await deleteSuppression(deps.store, accountOf(c), c.req.valid("param").email), 200));
}
