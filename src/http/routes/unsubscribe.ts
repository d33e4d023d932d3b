/**
 * One-click unsubscribe (RFC 8058) — the only routes without an API key: the token in the path
 * is the authority. POST unsubscribes (what mailbox providers send: a form body
 * `List-Unsubscribe=One-Click`, or an empty body); GET only shows a page whose button POSTs,
 * because link scanners and prefetchers fetch every GET in a message (RFC 8058 §1).
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { serviceSecret } from "../../lib/secret.js";
import { unsubscribeByLink } from "../../suppressions/one-click.js";
import { verifyUnsubscribeToken } from "../../suppressions/unsubscribe-token.js";
import type { AppDeps, AppEnv } from "../context.js";
import { escapeHtml, htmlPage, PAGE_HEADERS } from "../html.js";
import { limitBody } from "../middleware.js";
import { errors, pick } from "./shared.js";

const tokenParam = z.object({
  token: z.string().min(1).max(2048).openapi({ param: { name: "token", in: "path" }, description: "The token from the message's List-Unsubscribe link" }),
});

/** RFC 8058 §3.2: the POST body is `List-Unsubscribe=One-Click`; other fields are ignored. */
const oneClickForm = z.looseObject({ "List-Unsubscribe": z.string().max(64).optional() }).openapi("OneClickUnsubscribe");

const unsubscribed = z.object({ unsubscribed: z.literal(true), email: z.string() }).openapi("Unsubscribed");

/** A one-click POST is a short form; anything near the global 25 MB limit is not one. */
const FORM_LIMIT = 16 * 1024;

const post = createRoute({
  method: "post",
  path: "/unsubscribe/{token}",
  tags: ["unsubscribe"],
  summary: "One-click unsubscribe (RFC 8058): put the link's address on its account's suppression list",
  description:
    "No API key: the token is the authority. Accepts `application/x-www-form-urlencoded` or `multipart/form-data` with `List-Unsubscribe=One-Click`, or an empty body. Idempotent. Answers JSON, or an HTML confirmation when the client accepts text/html (a person who pressed the button on the GET page). Fires `email.unsubscribed` the first time.",
  request: {
    params: tokenParam,
    body: { required: false, content: { "application/x-www-form-urlencoded": { schema: oneClickForm }, "multipart/form-data": { schema: oneClickForm } } },
  },
  responses: {
    200: {
      description: "Unsubscribed (also when it already was)",
      content: { "application/json": { schema: unsubscribed }, "text/html": { schema: z.string() } },
    },
    400: { description: "The token is not valid (cut short, altered, not ours); nothing changed", content: errors[400].content },
    404: { description: "The message the link came with no longer exists", content: errors[404].content },
    ...pick(413),
    415: { description: "A body that is not a form", content: errors[415].content },
  },
});

const get = createRoute({
  method: "get",
  path: "/unsubscribe/{token}",
  tags: ["unsubscribe"],
  summary: "A confirmation page with a button that POSTs; changes nothing by itself",
  request: { params: tokenParam },
  responses: {
    200: { description: "The confirmation page", content: { "text/html": { schema: z.string() } } },
    400: { description: "The link is not valid; nothing changed", content: { "text/html": { schema: z.string() } } },
  },
});

const invalidPage = () =>
  htmlPage("This link does not work", "<p>This unsubscribe link is not valid: it may have been cut short or altered. Nothing was changed.</p>");

const wantsHtml = (c: Context) => /\btext\/html\b/i.test(c.req.header("accept") ?? "");

/** GET and POST /unsubscribe/{token}: no API key, the token decides. */
export function unsubscribeRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const key = async () => (await serviceSecret(deps.config)).key("unsubscribe");

  app.openapi({ ...post, middleware: [limitBody(FORM_LIMIT)] as const }, async (c) => {
    const { email, newly } = await unsubscribeByLink(deps.store, await key(), c.req.valid("param").token);
    if (!wantsHtml(c)) return c.json({ unsubscribed: true as const, email }, 200);
    const note = newly ? "" : " (it already was)";
    return c.body(htmlPage("You are unsubscribed", `<p><strong>${escapeHtml(email)}</strong> is unsubscribed${note}: no more email will be sent to it from this sender.</p>`), 200, PAGE_HEADERS);
  });

  app.openapi(get, async (c) => {
    const claims = await verifyUnsubscribeToken(await key(), c.req.valid("param").token);
    if (!claims) return c.body(invalidPage(), 400, PAGE_HEADERS);
    const form = `<p>Stop sending email to <strong>${escapeHtml(claims.email)}</strong>?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`;
    return c.body(htmlPage("Unsubscribe", form), 200, PAGE_HEADERS);
  });
}
