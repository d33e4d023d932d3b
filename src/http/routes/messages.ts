import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AppError } from "../../lib/errors.js";
import { serviceSecret } from "../../lib/secret.js";
import { cancelMessage } from "../../messages/cancel.js";
import { getMessage, listMessages } from "../../messages/queries.js";
import { messageTimeline } from "../../messages/timeline.js";
import {
  listMessagesQuery,
  messageList,
  messageView,
  sendMessageResponse,
  sendMessageSchema,
} from "../../messages/schemas.js";
import { requestHash, sendMessage, type SendOptions } from "../../messages/send.js";
import type { AppDeps, AppEnv } from "../context.js";
import { accountOf, requireScope } from "../middleware.js";
import { idempotencyKey, idempotencyKeyParameter, pick, replayedHeader, security } from "./shared.js";

const idParam = z.object({ id: z.string().max(64).openapi({ param: { name: "id", in: "path" }, example: "msg_01jd2x0c6v8k9m3n4p5q6r7s8t" }) });

const send = createRoute({
  method: "post",
  path: "/messages",
  tags: ["messages"],
  summary: "Send a message",
  description:
    "Validates, composes and stores the message with one recipient row per envelope recipient (to+cc+bcc, duplicates collapsed), then queues it for delivery. With `Idempotency-Key`, the same key and body within 24 h returns the first response again (`Idempotent-Replayed: true`); the same key with another body is 409.",
  security,
  parameters: [idempotencyKeyParameter],
  request: {
    body: { required: true, content: { "application/json": { schema: sendMessageSchema } } },
  },
  responses: {
    202: { description: "Accepted and queued", headers: replayedHeader, content: { "application/json": { schema: sendMessageResponse } } },
    ...pick(400, 401, 403, 409, 413, 415, 422),
  },
});

const get = createRoute({
  method: "get",
  path: "/messages/{id}",
  tags: ["messages"],
  summary: "A message and every recipient's status",
  security,
  request: { params: idParam },
  responses: {
    200: { description: "The message", content: { "application/json": { schema: messageView } } },
    ...pick(401, 403, 404),
  },
});

const list = createRoute({
  method: "get",
  path: "/messages",
  tags: ["messages"],
  summary: "List messages, newest first",
  security,
  request: { query: listMessagesQuery },
  responses: {
    200: { description: "A page", content: { "application/json": { schema: messageList } } },
    ...pick(400, 401, 403),
  },
});

const timelineEntry = z
  .object({
    type: z.string().openapi({ example: "email.delivered", description: "`email.accepted`, `attempt`, or an event type" }),
    created_at: z.string(),
    recipient: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
  })
  .openapi("TimelineEntry");

const timeline = createRoute({
  method: "get",
  path: "/messages/{id}/events",
  tags: ["messages"],
  summary: "The message's timeline: acceptance, every attempt, every event",
  security,
  request: { params: idParam },
  responses: {
    200: { description: "Oldest first", content: { "application/json": { schema: z.object({ data: z.array(timelineEntry) }) } } },
    ...pick(401, 403, 404),
  },
});

const cancel = createRoute({
  method: "post",
  path: "/messages/{id}/cancel",
  tags: ["messages"],
  summary: "Cancel a scheduled message (only while every recipient is still waiting)",
  security,
  request: { params: idParam },
  responses: {
    200: { description: "Cancelled", content: { "application/json": { schema: messageView } } },
    ...pick(401, 403, 404, 409),
  },
});

const checkId = (id: string) => {
  if (!/^msg_[0-9a-z]{26}$/.test(id)) throw new AppError("not_found", "message not found");
  return id;
};

/** What the send routes (composed, raw, batch) pass to the service: account, limits, domain rule, unsubscribe links, idempotency. */
export async function sendOptions(c: Context<AppEnv>, deps: AppDeps): Promise<SendOptions> {
  const key = idempotencyKey(c);
  const idempotency = key ? { key, requestHash: requestHash(c.req.method, c.req.path, await c.req.text()) } : undefined;
  const secret = await serviceSecret(deps.config);
  const { PUBLIC_URL, RETURN_PATH_DOMAIN } = deps.config;
  return {
    accountId: accountOf(c),
    maxMessageBytes: deps.config.MAX_MESSAGE_BYTES,
    domainPolicy: { requireVerified: deps.config.REQUIRE_VERIFIED_DOMAIN, secret },
    unsubscribe: {
      key: secret.key("unsubscribe"),
      publicUrl: PUBLIC_URL,
      verp: RETURN_PATH_DOMAIN ? { key: secret.key("verp"), domain: RETURN_PATH_DOMAIN } : undefined,
    },
    idempotency,
  };
}

export function messageRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const db = deps.store.db;
  app.openapi({ ...send, middleware: [requireScope(deps, "send")] as const }, async (c) => {
    const { result, replayed } = await sendMessage(deps.store, c.req.valid("json"), await sendOptions(c, deps));
    if (replayed) c.header("Idempotent-Replayed", "true");
    return c.json(result, 202);
  });
  app.openapi({ ...get, middleware: [requireScope(deps, "full")] as const }, async (c) => {
    return c.json(await getMessage(db, accountOf(c), checkId(c.req.valid("param").id)), 200);
  });
  app.openapi({ ...timeline, middleware: [requireScope(deps, "full")] as const }, async (c) =>
    c.json({ data: await messageTimeline(db, accountOf(c), checkId(c.req.valid("param").id)) }, 200),
  );
  app.openapi({ ...cancel, middleware: [requireScope(deps, "full")] as const }, async (c) => {
    const id = checkId(c.req.valid("param").id);
    await cancelMessage(db, accountOf(c), id);
    return c.json(await getMessage(db, accountOf(c), id), 200);
  });
  app.openapi({ ...list, middleware: [requireScope(deps, "full")] as const }, async (c) =>
    c.json(await listMessages(db, accountOf(c), c.req.valid("query")), 200),
  );
}
