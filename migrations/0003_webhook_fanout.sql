-- The webhook outbox fan-out: every event row gets one webhook_deliveries row per endpoint of
-- its account subscribed to its type, in the same transaction as the event (SPEC.md
-- "Webhooks"), whichever statement wrote the event. Statement-level with a transition table, so
-- a batch of outcomes costs one insert here, not one per row.
CREATE FUNCTION postline_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_deliveries (webhook_id, account_id, event_id, event_type, status, next_attempt_at, created_at, updated_at)
  SELECT w.id, e.account_id, e.id, e.type, 'pending', e.created_at, e.created_at, e.created_at
  FROM new_events e JOIN webhooks w ON w.account_id = e.account_id AND e.type = ANY (w.events)
  ON CONFLICT (webhook_id, event_id) DO NOTHING;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER events_fan_out AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION postline_fan_out_events();
