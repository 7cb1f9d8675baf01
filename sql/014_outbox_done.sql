-- Issue: no work lost after a restart of the local stack. A consumer whose work has no owner
-- table of its own (account mail) records on its outbox row that the work is done: it is then
-- idempotent on that row across redeliveries (a durable marker: Redis has no persistence),
-- and a message lost with the in-memory queue server is re-driven from the rows still not done.
ALTER TABLE outbox_message ADD COLUMN done_at TIMESTAMPTZ;
-- Mail sent before this migration was marked in Redis only: count it as done.
UPDATE outbox_message SET done_at = sent_at WHERE queue = 'MailQueue' AND sent_at IS NOT NULL;
CREATE INDEX outbox_message_undone_idx ON outbox_message (queue, sent_at)
  WHERE done_at IS NULL AND sent_at IS NOT NULL;
