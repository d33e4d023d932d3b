/** Request-scoped middleware: request ids and access logs, authentication and scopes, body limits. */
import { randomUUID } from "node:crypto";
import type { HttpBindings } from "@hono/node-server";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { authenticate, scopeAllows, type Scope } from "../keys/keys.js";
import { AppError } from "../lib/errors.js";
import type { AppDeps, AppEnv } from "./context.js";
import { problem } from "./problem.js";

/** The path as logged: a credential in it (the unsubscribe token) is cut (CONVENTIONS.md #10: logs never hold secrets). */
export function loggedPath(path: string): string {
  return path.startsWith("/unsubscribe/") ? "/unsubscribe/{token}" : path;
}

/** Adds a request id (a sane incoming `X-Request-Id` is kept) and logs one line per request: never headers or bodies. */
export function requestLog(deps: AppDeps): MiddlewareHandler<AppEnv> {
  // The access line is six scalars chosen here, none of which can hold a secret (the path's
  // one credential is cut by loggedPath), so it skips the redact walk: its wildcard paths look
  // into every field of every line, a few µs a request.
  const access = deps.logger.child({}, { redact: [] });
  return async (c, next) => {
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    c.set("requestId", requestId);
    // Served by @hono/node-server, the header goes straight onto Node's response (merged into
    // its writeHead): c.header() would turn every answer's headers into a WHATWG Headers
    // object and take the adapter off its fast path (measured on a bare Hono route: a
    // middleware doing that cost 15–18 µs of CPU a request).
    const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
    if (outgoing) outgoing.setHeader("X-Request-Id", requestId);
    else c.header("X-Request-Id", requestId);
    const start = performance.now();
    await next();
    access.info(
      {
        req_id: requestId,
        method: c.req.method,
        path: loggedPath(c.req.path),
        status: c.res.status,
        ms: Math.round((performance.now() - start) * 10) / 10,
        account: c.get("principal")?.accountId ?? undefined,
      },
      "request",
    );
  };
}

/**
 * Bearer-key authentication for a route that needs `scope` (SPEC.md: missing/unknown/revoked →
 * 401, wrong scope → 403). Account routes also need a key that belongs to an account.
 */
export function requireScope(deps: AppDeps, scope: Scope) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new AppError("unauthorized", "an API key is required: Authorization: Bearer <key>");
    const principal = await authenticate(deps.store.db, m[1]!);
    if (!principal) throw new AppError("unauthorized", "the API key is unknown or revoked");
    if (!scopeAllows(principal.scopes, scope) || (scope !== "admin" && principal.accountId === null))
      throw new AppError("forbidden", `this route needs a key with the ${scope} scope`);
    c.set("principal", principal);
    await next();
  });
}

/** The account of the authenticated caller (set by requireScope on every account route). */
export function accountOf(c: { get(key: "principal"): AppEnv["Variables"]["principal"] }): string {
  const id = c.get("principal").accountId;
  if (!id) throw new AppError("forbidden", "this route needs an account key");
  return id;
}

/**
 * Request bodies larger than `maxBytes` get 413 before they are parsed (RFC 9110 §15.5.14).
 * A declared Content-Length is checked at once (Node's parser never reads past it); only
 * chunked bodies are counted as they stream, which costs more.
 */
export function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  const tooLarge = (c: Parameters<MiddlewareHandler<AppEnv>>[0]) => problem(c, "payload_too_large", `the request body exceeds ${maxBytes} bytes`);
  const streaming = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared !== undefined && /^\d+$/.test(declared)) {
      if (Number(declared) > maxBytes) return tooLarge(c);
      return next();
    }
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    return streaming(c, next);
  };
}
