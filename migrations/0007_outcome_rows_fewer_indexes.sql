-- Every delivery outcome inserts an attempt and an event; each had indexes nothing reads.
-- * attempts keeps one: its key becomes (message_id, id), the order the timeline reads a
--   message's attempts in and the way the delete trigger finds a deleted recipient's. The key on
--   id alone was never looked up and the index by recipient never read.
-- * events keeps two: the unique index on id becomes the key (the webhook claim looks events up
--   by id), and (message_id, seq) stays for the timeline. The key on seq was looked up by
--   nothing, and (account_id, seq) read by nothing.
-- Per outcome that is four index entries fewer (seven → three).
DROP INDEX "attempts_recipient_idx";--> statement-breakpoint
DROP INDEX "attempts_message_idx";--> statement-breakpoint
ALTER TABLE "attempts" DROP CONSTRAINT "attempts_pkey";--> statement-breakpoint
ALTER TABLE "attempts" ADD CONSTRAINT "attempts_message_id_id_pk" PRIMARY KEY("message_id","id");--> statement-breakpoint
DROP INDEX "events_account_idx";--> statement-breakpoint
ALTER TABLE "events" DROP CONSTRAINT "events_pkey";--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_pkey" PRIMARY KEY USING INDEX "events_id_idx";--> statement-breakpoint
CREATE OR REPLACE FUNCTION postline_delete_recipient_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM attempts a USING gone g WHERE a.message_id = g.message_id AND a.recipient_id = g.id;
  RETURN NULL;
END
$$;
