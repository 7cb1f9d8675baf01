-- Transactional outbox (DESIGN.md §1): a row written in the same transaction as the change
-- it announces; the relay sends it to SQS only after commit.
CREATE TABLE outbox_message (
  id            BIGSERIAL PRIMARY KEY,
  queue         TEXT NOT NULL,          -- template logical id, e.g. 'IngestQueue'
  body          JSONB NOT NULL,
  dedup_key     TEXT UNIQUE,            -- business key; a second enqueue of the same work is a no-op
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  available_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  sent_at       TIMESTAMPTZ,
  attempts      INT NOT NULL DEFAULT 0,
  last_error    TEXT
);
CREATE INDEX outbox_message_pending_idx ON outbox_message (available_at, id) WHERE sent_at IS NULL;
