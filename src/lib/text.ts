/**
 * Text that reaches PostgreSQL, a header, a log line or a look-up from outside: control
 * characters are refused at the edge. PostgreSQL text cannot hold NUL (one in a query
 * parameter was a 500), and CR/LF in a header value is injection (ENGINE-NOTES.md).
 */
import { z } from "@hono/zod-openapi";

/** No control character at all (names, addresses, filters, path parameters). */
export const NO_CONTROL = /^[^\x00-\x1f\x7f]*$/;
/** No control character but tab (header values, subjects, tag values, file names). */
export const NO_CONTROL_BUT_TAB = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;

/** A string without control characters; `tab` allows HT (header-like text). */
export const plainText = (what: string, opts: { tab?: boolean } = {}) =>
  opts.tab
    ? z.string().regex(NO_CONTROL_BUT_TAB, `${what} must not contain CR, LF, NUL or other control characters`)
    : z.string().regex(NO_CONTROL, `${what} must not contain control characters`);
