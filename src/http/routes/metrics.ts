import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { metrics, renderGauge } from "../../lib/metrics.js";
import type { AppDeps, AppEnv } from "../context.js";

const route = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["health"],
  summary: "Prometheus metrics: request and delivery counters of this process, queue depth of the database",
  responses: { 200: { description: "Text exposition format", content: { "text/plain": { schema: z.string() } } } },
});

/** Counts every request by method, matched route pattern (bounded cardinality) and status. */
export function countRequests(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    metrics.httpRequests.inc({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
  };
}

export function metricsRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  app.openapi(route, async (c) => {
    // Partial indexes cover these states, so the count stays cheap on a large table.
    const rows = await deps.store.rows<{ status: string; n: number }>(
      sql`select status, count(*)::int as n from recipients where status in ('queued', 'deferred', 'sending') group by status`,
    );
    const depth = new Map(rows.map((r) => [r.status, r.n]));
    const mem = process.memoryUsage();
    const text = [
      metrics.httpRequests.render(),
      metrics.deliveryOutcomes.render(),
      renderGauge(
        "postline_queue_recipients",
        "Recipients waiting or in flight, by state.",
        ["queued", "deferred", "sending"].map((s) => [{ status: s }, depth.get(s) ?? 0]),
      ),
      renderGauge("process_resident_memory_bytes", "Resident memory of this process.", [[{}, mem.rss]]),
      renderGauge("process_uptime_seconds", "Seconds since this process started.", [[{}, Math.round(process.uptime())]]),
    ].join("\n\n");
    const res = c.text(`${text}\n`, 200);
    res.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return res;
  });
}
