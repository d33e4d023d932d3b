import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps, AppEnv } from "../context.js";
import { problem } from "../problem.js";

const status = z.object({ status: z.string() }).openapi("Health");

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["health"],
  summary: "The process is up",
  responses: { 200: { description: "Up", content: { "application/json": { schema: status } } } },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["health"],
  summary: "The database answers and every migration is applied",
  responses: {
    200: { description: "Ready", content: { "application/json": { schema: status } } },
    503: { description: "Not ready", content: { "application/problem+json": { schema: z.object({}).passthrough() } } },
  },
});

export function healthRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  app.openapi(healthz, (c) => c.json({ status: "ok" }, 200));
  app.openapi(readyz, async (c) => {
    if (await deps.store.ready()) return c.json({ status: "ready" }, 200);
    return problem(c, "not_ready", "the database is unreachable or migrations are pending") as never;
  });
}
