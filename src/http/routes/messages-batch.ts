import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { AppError } from "../../lib/errors.js";
import { safeError } from "../../lib/logger.js";
import { sendMessageResponse } from "../../messages/schemas.js";
import { BATCH_LIMIT, sendBatch } from "../../messages/send-batch.js";
import type { AppDeps, AppEnv } from "../context.js";
import { requireScope } from "../middleware.js";
import { problemFields } from "../problem.js";
import { sendOptions } from "./messages.js";
import { pick, problemSchema, security } from "./shared.js";

// Items are validated one by one in the service (a bad one must not fail the request), so the
// request schema takes any JSON value per item and only documents them as SendMessage.
const batchBody = z
  .array(z.unknown().openapi({ allOf: [{ $ref: "#/components/schemas/SendMessage" }], description: "A POST /messages body" }))
  .min(1, "at least one message")
  .max(BATCH_LIMIT, `at most ${BATCH_LIMIT} messages per batch`)
  .openapi("SendBatch");

const batchResult = z
  .object({
    data: z.array(
      z.union([sendMessageResponse, z.object({ error: problemSchema.omit({ instance: true, request_id: true }) }).openapi("BatchError")]),
    ),
  })
  .openapi("SendBatchResult");

const sendBatchRoute = createRoute({
  method: "post",
  path: "/messages/batch",
  tags: ["messages"],
  summary: "Send up to 500 messages in one request",
  description: `A JSON array of POST /messages bodies (at most ${BATCH_LIMIT}, request ≤ 25 MB). Each is validated and stored on its own; the answer is 200 with one result per message, in order: the POST /messages answer, or \`{"error": <problem>}\` with the status that message alone would have got (422, 413, 500…). \`Idempotency-Key\` is not supported here (400): retrying a batch may send its messages twice; use POST /messages for retry-safe sends.`,
  security,
  request: { body: { required: true, content: { "application/json": { schema: batchBody } } } },
  responses: {
    200: { description: "One result per message, in order", content: { "application/json": { schema: batchResult } } },
    ...pick(400, 401, 403, 413, 415, 422),
  },
});

/** POST /messages/batch (`send` scope). */
export function batchMessageRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps) {
  app.openapi({ ...sendBatchRoute, middleware: [requireScope(deps, "send")] as const }, async (c) => {
    if (c.req.header("idempotency-key") !== undefined)
      throw new AppError("malformed_request", "Idempotency-Key is not supported on POST /messages/batch; send retry-safe messages with POST /messages");
    const items = await sendBatch(deps.store, c.req.valid("json"), await sendOptions(c, deps), (err, index) =>
      deps.logger.error({ err: safeError(err), req_id: c.get("requestId"), index }, "batch message failed unexpectedly"),
    );
    const data = items.map((i) => (i.ok ? i.result : { error: problemFields(i.error.code, i.error.message, i.error.errors) }));
    return c.json({ data }, 200);
  });
}
