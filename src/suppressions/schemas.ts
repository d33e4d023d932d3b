/**
 * The zod schemas of the suppression list API (GET/POST/DELETE /suppressions): they validate
 * requests, type the service and produce openapi.yaml (CONVENTIONS.md #2).
 */
import { z } from "@hono/zod-openapi";
import { plainText } from "../lib/text.js";
import { SUPPRESSION_REASONS } from "./suppressions.js";

export const suppressionSchema = z
  .object({
    email: z.string().openapi({ example: "bob@example.org", description: "The address as first seen" }),
    reason: z.enum(SUPPRESSION_REASONS).openapi({
      description: "`hard_bounce` (a 5xx that names the mailbox), `complaint` (a feedback report), `unsubscribe` (one-click link or mailto), `manual` (POST /suppressions)",
    }),
    detail: z.string().nullable().openapi({ description: "E.g. the receiver's reply `550 5.1.1 No such user`, or the note given with POST" }),
    message: z.string().nullable().openapi({ description: "The message that caused it (`msg_…`), null when added by hand" }),
    recipient: z.string().nullable().openapi({ description: "The recipient that caused it (`rcpt_…`), null when added by hand" }),
    created_at: z.string(),
  })
  .openapi("Suppression");
export type SuppressionView = z.infer<typeof suppressionSchema>;

export const suppressionList = z
  .object({ data: z.array(suppressionSchema), next_cursor: z.string().nullable() })
  .openapi("SuppressionList");

export const deletedSuppression = suppressionSchema.extend({ deleted: z.literal(true) }).openapi("DeletedSuppression");

export const createSuppressionBody = z
  .strictObject({
    email: z.string().trim().min(3).max(320).openapi({ description: "A bare address (addr-spec)", example: "bob@example.org" }),
    reason: z.enum(SUPPRESSION_REASONS).default("manual"),
    detail: z
      .string()
      .max(1000)
      .regex(/^[^\x00-\x08\x0a-\x1f\x7f]*$/, "detail must not contain control characters")
      .optional(),
  })
  .openapi("CreateSuppression");
export type CreateSuppressionInput = z.infer<typeof createSuppressionBody>;

export const listSuppressionsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ param: { name: "limit", in: "query" } }),
  cursor: z
    .string()
    .max(512)
    .regex(/^[A-Za-z0-9_-]+$/, "not a cursor from this API")
    .optional()
    .openapi({ param: { name: "cursor", in: "query" }, description: "The previous page's `next_cursor`" }),
  reason: z.enum(SUPPRESSION_REASONS).optional().openapi({ param: { name: "reason", in: "query" } }),
  email: plainText("email").max(320).optional().openapi({ param: { name: "email", in: "query" }, description: "Exact address (case-insensitive): a page of at most one entry" }),
});
export type ListSuppressionsQuery = z.infer<typeof listSuppressionsQuery>;
