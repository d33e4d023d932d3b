/** RFC 9457 problem+json: one exhaustive mapping from error codes to statuses and titles. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode, FieldError } from "../lib/errors.js";

export function statusOf(code: ErrorCode): { status: ContentfulStatusCode; title: string } {
  switch (code) {
    case "malformed_request":
      return { status: 400, title: "Malformed request" };
    case "unauthorized":
      return { status: 401, title: "Unauthorized" };
    case "forbidden":
      return { status: 403, title: "Forbidden" };
    case "not_found":
      return { status: 404, title: "Not found" };
    case "method_not_allowed":
      return { status: 405, title: "Method not allowed" };
    case "conflict":
      return { status: 409, title: "Conflict" };
    case "idempotency_conflict":
      return { status: 409, title: "Idempotency key reused with a different request" };
    case "payload_too_large":
      return { status: 413, title: "Payload too large" };
    case "unsupported_media_type":
      return { status: 415, title: "Unsupported media type" };
    case "validation_failed":
      return { status: 422, title: "Validation failed" };
    case "unprocessable":
      return { status: 422, title: "Unprocessable request" };
    case "not_ready":
      return { status: 503, title: "Not ready" };
    case "dns_unavailable":
      return { status: 503, title: "DNS temporarily unavailable" };
    case "internal":
      return { status: 500, title: "Internal server error" };
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  request_id?: string;
  errors?: FieldError[];
}

/** The problem fields for `code`, without the request's own (also one item of a batch answer). */
export function problemFields(code: ErrorCode, detail: string, errors?: FieldError[]): Problem {
  const { status, title } = statusOf(code);
  return { type: `urn:postline:problem:${code.replaceAll("_", "-")}`, title, status, detail, ...(errors && errors.length ? { errors } : {}) };
}

/** Writes the problem response for `code`. */
export function problem(c: Context, code: ErrorCode, detail: string, errors?: FieldError[]): Response {
  const { errors: fields, ...rest } = problemFields(code, detail, errors);
  const body: Problem = {
    ...rest,
    instance: c.req.path,
    request_id: c.get("requestId" as never) as string | undefined,
    ...(fields ? { errors: fields } : {}),
  };
  const status = body.status as ReturnType<typeof statusOf>["status"];
  if (status === 401) c.header("WWW-Authenticate", 'Bearer realm="postline"');
  return c.body(JSON.stringify(body), status, { "Content-Type": "application/problem+json" });
}
