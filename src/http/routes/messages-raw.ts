import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { sendMessageResponse } from "../../messages/schemas.js";
import { sendRawMessage, sendRawSchema } from "../../messages/send-raw.js";
import type { AppDeps, AppEnv } from "../context.js";
import { requireScope } from "../middleware.js";
import { sendOptions } from "./messages.js";
import { idempotencyKeyParameter, pick, replayedHeader, security } from "./shared.js";

const sendRaw = createRoute({
  method: "post",
  path: "/messages/raw",
  tags: ["messages"],
  summary: "Send your own RFC 5322 message",
  description:
    "The message must parse (a header section with exactly one From; lines ≤ 998 octets; no NUL). Line ends are normalised to CRLF, Bcc is removed, Message-ID and Date are added when missing, and it is DKIM-signed with the From domain's key. `from` and `to` are the envelope. `Idempotency-Key` works as for POST /messages.",
  security,
  parameters: [idempotencyKeyParameter],
  request: {
    body: { required: true, content: { "application/json": { schema: sendRawSchema } } },
  },
  responses: {
    202: { description: "Accepted and queued", headers: replayedHeader, content: { "application/json": { schema: sendMessageResponse } } },
    ...pick(400, 401, 403, 409, 413, 415, 422),
  },
});

export function rawMessageRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  app.openapi({ ...sendRaw, middleware: [requireScope(deps, "send")] as const }, async (c) => {
    const { result, replayed } = await sendRawMessage(deps.store, c.req.valid("json"), await sendOptions(c, deps));
    if (replayed) c.header("Idempotent-Replayed", "true");
    return c.json(result, 202);
  });
}
