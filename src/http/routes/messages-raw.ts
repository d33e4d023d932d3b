import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { serviceSecret } from "../../lib/secret.js";
import { sendMessageResponse } from "../../messages/schemas.js";
import { sendRawMessage, sendRawSchema } from "../../messages/send-raw.js";
import { requestHash } from "../../messages/send.js";
import type { AppDeps, AppEnv } from "../context.js";
import { accountOf, requireScope } from "../middleware.js";
import { pick, security } from "./shared.js";

const sendRaw = createRoute({
  method: "post",
  path: "/messages/raw",
  tags: ["messages"],
  summary: "Send your own RFC 5322 message",
  description:
    "The message must parse (a header section with exactly one From; lines ≤ 998 octets; no NUL). Line ends are normalised to CRLF, Bcc is removed, Message-ID and Date are added when missing, and it is DKIM-signed with the From domain's key. `from` and `to` are the envelope. `Idempotency-Key` works as for POST /messages.",
  security,
  request: {
    headers: z.object({ "idempotency-key": z.string().regex(/^[\x21-\x7e]{1,255}$/, "1–255 printable ASCII characters").optional() }),
    body: { required: true, content: { "application/json": { schema: sendRawSchema } } },
  },
  responses: {
    202: { description: "Accepted and queued", content: { "application/json": { schema: sendMessageResponse } } },
    ...pick(400, 401, 403, 409, 413, 415, 422),
  },
});

export function rawMessageRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  app.openapi({ ...sendRaw, middleware: [requireScope(deps, "send")] as const }, async (c) => {
    const key = c.req.valid("header")["idempotency-key"];
    const idempotency = key ? { key, requestHash: requestHash("POST", "/messages/raw", await c.req.text()) } : undefined;
    const { result, replayed } = await sendRawMessage(deps.store, c.req.valid("json"), {
      accountId: accountOf(c),
      maxMessageBytes: deps.config.MAX_MESSAGE_BYTES,
      domainPolicy: { requireVerified: deps.config.REQUIRE_VERIFIED_DOMAIN, secret: await serviceSecret(deps.config) },
      idempotency,
    });
    if (replayed) c.header("Idempotent-Replayed", "true");
    return c.json(result, 202);
  });
}
