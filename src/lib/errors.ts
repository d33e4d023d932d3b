/**
 * The one error type features throw for outcomes the HTTP layer turns into problem+json
 * (CONVENTIONS.md #3). The set of codes is closed; http/problem.ts maps each to a status.
 */
export const ERROR_CODES = [
  "malformed_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "conflict",
  "idempotency_conflict",
  "payload_too_large",
  "unsupported_media_type",
  "validation_failed",
  "unprocessable",
  "not_ready",
  "dns_unavailable",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface FieldError {
  /** JSON-pointer-like path into the request, e.g. `to/3` or `headers/X-Foo`. */
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const notFound = (what: string) => new AppError("not_found", `${what} not found`);
