import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { serviceSecret } from "../../lib/secret.js";
import { listDeliveries } from "../../webhooks/deliveries.js";
import { DELIVERY_STATES, WEBHOOK_EVENT_TYPES } from "../../webhooks/events.js";
import { MAX_URL_LENGTH } from "../../webhooks/url.js";
import { createWebhook, deleteWebhook, getWebhook, listWebhooks } from "../../webhooks/webhooks.js";
import type { AppDeps, AppEnv } from "../context.js";
import { accountOf, requireScope } from "../middleware.js";
import { pageQuery, pageResponse, pick, security } from "./shared.js";

const webhookFields = {
  id: z.string().openapi({ example: "wh_01jd2…" }),
  url: z.string().openapi({ example: "https://app.example.com/hooks/postline" }),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  created_at: z.string(),
};
export const webhookSchema = z.object(webhookFields).openapi("Webhook");
export const createdWebhookSchema = z
  .object({
    ...webhookFields,
    secret: z.string().openapi({ description: "`whsec_…`: verify signatures with it (Standard Webhooks). Shown only in this response", example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
  })
  .openapi("CreatedWebhook");

const trySchema = z
  .object({
    started_at: z.string(),
    duration_ms: z.number().int(),
    status_code: z.number().int().nullable().openapi({ description: "null when no HTTP answer came (see `error`)" }),
    response: z.string().nullable().openapi({ description: "The first KB of the answer's body" }),
    error: z.string().nullable(),
  })
  .openapi("WebhookTry");

const deliverySchema = z
  .object({
    id: z.string().openapi({ description: "The delivery's sequence number (the page cursor)" }),
    event_id: z.string().openapi({ description: "Also the `webhook-id` header of every try" }),
    event_type: z.enum(WEBHOOK_EVENT_TYPES),
    status: z.enum(DELIVERY_STATES).openapi({ description: "`pending`: waiting for a (next) try; `succeeded`: answered 2xx; `failed`: no 2xx within WEBHOOK_RETRY_LIFETIME" }),
    attempts: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_duration_ms: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    delivered_at: z.string().nullable(),
    tries: z.array(trySchema).openapi({ description: "Every try, oldest first" }),
  })
  .openapi("WebhookDelivery");

const idParam = z.object({ id: z.string().max(64).openapi({ param: { name: "id", in: "path" } }) });
const deliveriesQuery = pageQuery("webhook").extend({
  cursor: z.string().regex(/^\d{1,18}$/, "must be a delivery id").optional().openapi({ param: { name: "cursor", in: "query" } }),
});

export function webhookRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  const full = requireScope(deps, "full");

  const create = createRoute({
    method: "post",
    path: "/webhooks",
    tags: ["webhooks"],
    summary: "Add a webhook endpoint; its signing secret is shown only in this response",
    description: [
      "Each event of a subscribed type is POSTed as `{\"type\", \"created_at\", \"data\"}` with the Standard Webhooks headers",
      "`webhook-id` (the event id, the same on every retry), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>`).",
      "Non-2xx answers, timeouts and connection errors are retried with exponential backoff until WEBHOOK_RETRY_LIFETIME; redirects are not followed.",
      `The URL: absolute http(s), at most ${MAX_URL_LENGTH} characters, no credentials; https unless the host is inside DELIVERY_ALLOW_NETWORKS;`,
      "its addresses go through the same destination guard as mail delivery.",
    ].join(" "),
    security,
    middleware: [full] as const,
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .strictObject({
                url: z.string().max(MAX_URL_LENGTH),
                events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length * 2).openapi({ description: "Event types to receive; duplicates are ignored" }),
              })
              .openapi("CreateWebhook"),
          },
        },
      },
    },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: createdWebhookSchema } } },
      ...pick(400, 401, 403, 413, 415, 422),
    },
  });
  app.openapi(create, async (c) => {
    const { url, events } = c.req.valid("json");
    const secret = await serviceSecret(deps.config);
    return c.json(await createWebhook(deps.store.db, secret, { accountId: accountOf(c), url, events, allowNetworks: deps.config.DELIVERY_ALLOW_NETWORKS }), 201);
  });

  const list = createRoute({
    method: "get",
    path: "/webhooks",
    tags: ["webhooks"],
    summary: "List the account's webhook endpoints, newest first (never their secrets)",
    security,
    middleware: [full] as const,
    request: { query: pageQuery("webhook") },
    responses: {
      200: pageResponse(webhookSchema),
      ...pick(400, 401, 403),
    },
  });
  app.openapi(list, async (c) => c.json(await listWebhooks(deps.store.db, accountOf(c), c.req.valid("query")), 200));

  const get = createRoute({
    method: "get",
    path: "/webhooks/{id}",
    tags: ["webhooks"],
    summary: "A webhook endpoint (never its secret)",
    security,
    middleware: [full] as const,
    request: { params: idParam },
    responses: {
      200: { description: "The endpoint", content: { "application/json": { schema: webhookSchema } } },
      ...pick(401, 403, 404),
    },
  });
  app.openapi(get, async (c) => c.json(await getWebhook(deps.store.db, accountOf(c), c.req.valid("param").id), 200));

  const remove = createRoute({
    method: "delete",
    path: "/webhooks/{id}",
    tags: ["webhooks"],
    summary: "Delete a webhook endpoint with its delivery history; it receives nothing more",
    security,
    middleware: [full] as const,
    request: { params: idParam },
    responses: {
      200: { description: "Deleted", content: { "application/json": { schema: z.object({ id: z.string(), deleted: z.literal(true) }).openapi("DeletedWebhook") } } },
      ...pick(401, 403, 404),
    },
  });
  app.openapi(remove, async (c) => c.json(await deleteWebhook(deps.store.db, accountOf(c), c.req.valid("param").id), 200));

  const deliveries = createRoute({
    method: "get",
    path: "/webhooks/{id}/deliveries",
    tags: ["webhooks"],
    summary: "The endpoint's deliveries, newest first, each with its outcome and every try",
    security,
    middleware: [full] as const,
    request: { params: idParam, query: deliveriesQuery },
    responses: {
      200: pageResponse(deliverySchema),
      ...pick(400, 401, 403, 404),
    },
  });
  app.openapi(deliveries, async (c) => c.json(await listDeliveries(deps.store.db, accountOf(c), c.req.valid("param").id, c.req.valid("query")), 200));
}
