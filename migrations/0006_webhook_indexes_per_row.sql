-- One index entry fewer per webhook delivery and per try (bench:webhooks writes both for every
-- event: the fan-out inserts the delivery, the completion updates it, non-HOT, and inserts the try).
-- * webhook_deliveries (webhook_id, event_id) was unique only to back the fan-out's ON CONFLICT,
--   which can never fire: the trigger runs once per inserted event and events.id is unique.
-- * webhook_attempts had a key on its id plus an index on (delivery_seq, id); the key is now
--   (delivery_seq, id), the order the deliveries listing reads a delivery's tries in.
DROP INDEX "webhook_attempts_delivery_idx";--> statement-breakpoint
DROP INDEX "webhook_deliveries_event_idx";--> statement-breakpoint
ALTER TABLE "webhook_attempts" DROP CONSTRAINT "webhook_attempts_pkey";--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_delivery_seq_id_pk" PRIMARY KEY("delivery_seq","id");--> statement-breakpoint
CREATE OR REPLACE FUNCTION postline_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_deliveries (webhook_id, account_id, event_id, event_type, status, next_attempt_at, created_at, updated_at)
  SELECT w.id, e.account_id, e.id, e.type, 'pending', e.created_at, e.created_at, e.created_at
  FROM new_events e JOIN webhooks w ON w.account_id = e.account_id AND e.type = ANY (w.events);
  RETURN NULL;
END
$$;
