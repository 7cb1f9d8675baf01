-- SPEC §2.2 conversations and messages.
CREATE TABLE conversation (
  id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id            UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  title              TEXT,
  created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'archived')),
  active_context_id  UUID,
  meta               JSONB NOT NULL DEFAULT '{}'::jsonb
);
-- Sidebar listing: newest first per user, keyset-paginated.
CREATE INDEX conversation_user_updated_idx ON conversation (user_id, updated_at DESC, id DESC);

CREATE TABLE message (
  id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  conversation_id  UUID NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  sender           TEXT NOT NULL CHECK (sender IN ('user', 'assistant', 'system', 'tool')),
  role             TEXT NOT NULL,
  content          TEXT NOT NULL,
  content_struct   JSONB,
  seq              INT NOT NULL,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  token_count_in   INT,
  token_count_out  INT,
  meta             JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX message_conversation_seq_idx ON message (conversation_id, seq);
