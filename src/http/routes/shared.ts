/** Pieces every route declares: the problem+json schema and the error responses. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AppError } from "../../lib/errors.js";
import { idPattern, type IdKind } from "../../lib/ids.js";
import { plainText } from "../../lib/text.js";

export const problemSchema = z
  .object({
    type: z.string().openapi({ example: "urn:postline:problem:validation-failed" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    request_id: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: problemSchema } },
});

export const errors = {
  400: problemResponse("Malformed request (e.g. invalid JSON)"),
  401: problemResponse("Missing, unknown or revoked API key"),
  403: problemResponse("The key lacks the scope this route needs"),
  404: problemResponse("Not found (also for another account's resources)"),
  409: problemResponse("Conflict"),
  413: problemResponse("Request body or composed message too large"),
  415: problemResponse("Content-Type is not application/json"),
  422: problemResponse("Validation failed; `errors` lists each field"),
} as const;

export const pick = <K extends keyof typeof errors>(...codes: K[]) =>
  Object.fromEntries(codes.map((k) => [k, errors[k]])) as Pick<typeof errors, K>;

/**
 * A display name (an account's, an API key's): trimmed, 1–200 characters, no control characters.
 * PostgreSQL text cannot hold NUL (a NUL here was a 500), and a name that may end up in logs
 * and dashboards has no use for CR, LF or escapes.
 */
export const displayName = plainText("name").trim().min(1).max(200);

/** `limit` and `cursor` of a list ordered by id: the cursor is the last id of the previous page. */
export const pageQuery = (kind: IdKind) =>
  z.strictObject({
    limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ param: { name: "limit", in: "query" } }),
    cursor: z.string().regex(idPattern(kind), "not a cursor from this API").optional().openapi({ param: { name: "cursor", in: "query" } }),
  });

export const security = [{ bearer: [] }];

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The `Idempotency-Key` header of the send routes, declared as a plain OpenAPI parameter and
 * read by `idempotencyKey(c)` — not as a `request.headers` schema: Hono validates one by copying
 * every request header into a WHATWG Headers object and then a plain object, on every request of
 * the busiest route, whether the header is there or not.
 */
export const idempotencyKeyParameter = {
  name: "idempotency-key",
  in: "header",
  required: false,
  description: "Makes a retried request safe: the same key and body within 24 h returns the first response",
  schema: { type: "string", pattern: IDEMPOTENCY_KEY.source },
} as const;

/** The 202 of a send route: `Idempotent-Replayed: true` when it repeats the first response to the same key and body. */
export const replayedHeader = z.object({
  "Idempotent-Replayed": z
    .literal("true")
    .optional()
    .openapi({ description: "`true` when this is the first response again, for a request repeated with the same Idempotency-Key and body" }),
});

/** The request's Idempotency-Key, if any; 400 (as for any invalid header) when it is not 1–255 printable ASCII characters. */
export function idempotencyKey(c: Context): string | undefined {
  const key = c.req.header("idempotency-key");
  if (key === undefined || IDEMPOTENCY_KEY.test(key)) return key;
  throw new AppError("malformed_request", "invalid header parameters", [{ path: "idempotency-key", message: "1–255 printable ASCII characters" }]);
}

/** The 200 response of a list route (SPEC.md "Lists"): `{"data": [...], "next_cursor": "…" | null}`. */
export const pageResponse = <T extends z.ZodTypeAny>(item: T) => ({
  description: "A page",
  content: { "application/json": { schema: z.object({ data: z.array(item), next_cursor: z.string().nullable() }) } },
});
