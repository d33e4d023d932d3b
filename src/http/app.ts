/** Builds the Hono app from its parts: middleware, one module per resource, errors, the OpenAPI document. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import { HTTPException } from "hono/http-exception";
import { stringify } from "yaml";
import { AppError, type ErrorCode, type FieldError } from "../lib/errors.js";
import { LIMITS } from "../messages/schemas.js";
import type { AppDeps, AppEnv } from "./context.js";
import { safeError } from "../lib/logger.js";
import { limitBody, loggedPath, requestLog } from "./middleware.js";
import { problem } from "./problem.js";
import { accountRoutes } from "./routes/accounts.js";
import { domainRoutes } from "./routes/domains.js";
import { healthRoutes } from "./routes/health.js";
import { keyRoutes } from "./routes/keys.js";
import { messageRoutes } from "./routes/messages.js";
import { rawMessageRoutes } from "./routes/messages-raw.js";
import { batchMessageRoutes } from "./routes/messages-batch.js";
import { suppressionRoutes } from "./routes/suppressions.js";
import { unsubscribeRoutes } from "./routes/unsubscribe.js";
import { countRequests, metricsRoutes } from "./routes/metrics.js";
import { webhookRoutes } from "./routes/webhooks.js";

const HTTP_CODES: Record<number, ErrorCode> = {
  400: "malformed_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

export function buildApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    // Validation failures: 422 for bodies, 400 for query, path and headers; every field listed.
    defaultHook: (result, c) => {
      if (result.success) return;
      const errors: FieldError[] = result.error.issues.map((i) => ({
        path: i.path.map(String).join("/") || "(root)",
        message: i.message,
      }));
      return result.target === "json"
        ? problem(c, "validation_failed", "the request body has invalid fields", errors)
        : problem(c, "malformed_request", `invalid ${result.target === "param" ? "path" : result.target} parameters`, errors);
    },
  });

  app.use("*", requestLog(deps));
  app.use("*", countRequests());
  app.use("*", limitBody(LIMITS.bodyBytes));

  healthRoutes(app, deps);
  accountRoutes(app, deps);
  keyRoutes(app, deps);
  domainRoutes(app, deps);
  rawMessageRoutes(app, deps); // before /messages/{id} routes, though methods differ
  batchMessageRoutes(app, deps);
  messageRoutes(app, deps);
  suppressionRoutes(app, deps);
  unsubscribeRoutes(app, deps);
  webhookRoutes(app, deps);
  metricsRoutes(app, deps);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key: `pl_…`",
  });
  let yamlCache: string | undefined;
  app.get("/openapi.yaml", (c) => {
    yamlCache ??= openApiYaml(app);
    return c.body(yamlCache, 200, { "Content-Type": "application/yaml; charset=utf-8" });
  });
  app.get("/docs", swaggerUI({ url: "/openapi.yaml", title: "Postline API" }));

  // A path that exists under other methods is a 405 with Allow (RFC 9110 §15.5.6), not a 404.
  let allowed: ((path: string) => string[]) | undefined;
  app.notFound((c) => {
    allowed ??= methodsByPath(app.routes);
    const methods = allowed(c.req.path);
    if (methods.length === 0) return problem(c, "not_found", `no route for ${c.req.method} ${c.req.path}`);
    c.header("Allow", methods.join(", "));
    return problem(c, "method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}; allowed: ${methods.join(", ")}`);
  });
  app.onError((err, c) => {
    if (err instanceof AppError) return problem(c, err.code, err.message, err.errors);
    if (err instanceof HTTPException && HTTP_CODES[err.status]) {
      const detail = err.status === 400 ? "the request body is not valid JSON" : err.message;
      return problem(c, HTTP_CODES[err.status]!, detail);
    }
    deps.logger.error({ err: safeError(err), req_id: c.get("requestId"), path: loggedPath(c.req.path) }, "unhandled error");
    return problem(c, "internal", "an unexpected error occurred; it has been logged");
  });
  return app;
}

/**
 * The methods each route path answers (HEAD with GET, as Hono serves it), as a look-up by
 * request path. Middleware entries (method ALL, wildcard paths) are not routes.
 */
function methodsByPath(routes: readonly { method: string; path: string }[]): (path: string) => string[] {
  const patterns = new Map<string, { re: RegExp; methods: Set<string> }>();
  for (const r of routes) {
    if (r.method === "ALL" || r.path.includes("*")) continue;
    const entry = patterns.get(r.path) ?? {
      re: new RegExp(`^${r.path.split("/").map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/")}/?$`),
      methods: new Set<string>(),
    };
    entry.methods.add(r.method);
    if (r.method === "GET") entry.methods.add("HEAD");
    patterns.set(r.path, entry);
  }
  return (path) => {
    const methods = new Set<string>();
    for (const { re, methods: m } of patterns.values()) if (re.test(path)) m.forEach((x) => methods.add(x));
    return [...methods].sort();
  };
}

/** The OpenAPI 3.1 document of every route, as YAML (committed as openapi.yaml by `npm run openapi`). */
export function openApiYaml(app: OpenAPIHono<AppEnv>): string {
  const doc = app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Postline API",
      version: "0.1.0",
      description: "Self-hosted email sending. Errors are RFC 9457 problem+json. Authenticate with `Authorization: Bearer <API key>`.",
    },
  });
  return stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}
