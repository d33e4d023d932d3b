-- Attempt rows lose their foreign keys: each is inserted from the RETURNING of the update of
-- its own parent row (delivery/queue/complete.ts, webhooks/queue/complete.ts), so the parent
-- exists by construction, and the key check — a FOR KEY SHARE look-up of a row the same
-- statement had just updated — cost ~23 µs per attempt (EXPLAIN ANALYZE, an outcome batch of
-- 94: 8.2 → 5.7 ms). What ON DELETE CASCADE did is done by statement-level triggers on the
-- parents: deleting recipients (a message's cascade) or webhook deliveries (a webhook's)
-- deletes their attempts in the same statement.
ALTER TABLE "attempts" DROP CONSTRAINT "attempts_recipient_id_recipients_id_fk";
--> statement-breakpoint
ALTER TABLE "webhook_attempts" DROP CONSTRAINT "webhook_attempts_delivery_seq_webhook_deliveries_seq_fk";
--> statement-breakpoint
CREATE FUNCTION postline_delete_recipient_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM attempts a USING gone g WHERE a.recipient_id = g.id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER recipients_delete_attempts AFTER DELETE ON recipients REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION postline_delete_recipient_attempts();
--> statement-breakpoint
CREATE FUNCTION postline_delete_delivery_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM webhook_attempts a USING gone g WHERE a.delivery_seq = g.seq;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER webhook_deliveries_delete_attempts AFTER DELETE ON webhook_deliveries REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION postline_delete_delivery_attempts();
