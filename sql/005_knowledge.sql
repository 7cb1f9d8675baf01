-- SPEC §2.5 knowledge contexts, their sources and embedded chunks (HNSW, cosine).
CREATE TABLE knowledge_context (
  id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_user_id  UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  description    TEXT,
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  meta           JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX knowledge_context_owner_idx ON knowledge_context (owner_user_id);

ALTER TABLE conversation
  ADD CONSTRAINT conversation_active_context_fk
  FOREIGN KEY (active_context_id) REFERENCES knowledge_context(id) ON DELETE SET NULL;

CREATE TABLE context_source (
  id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  context_id  UUID NOT NULL REFERENCES knowledge_context(id) ON DELETE CASCADE,
  fs_path     TEXT NOT NULL,
  recursive   BOOLEAN NOT NULL DEFAULT TRUE,
  meta        JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX context_source_context_idx ON context_source (context_id);

CREATE TABLE knowledge_chunk (
  id           BIGSERIAL PRIMARY KEY,
  context_id   UUID NOT NULL REFERENCES knowledge_context(id) ON DELETE CASCADE,
  fs_path      TEXT NOT NULL,
  chunk_index  INT NOT NULL,
  content      TEXT NOT NULL,
  embedding    vector(384) NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  meta         JSONB NOT NULL DEFAULT '{}'::jsonb,
  UNIQUE (context_id, fs_path, chunk_index)
);
CREATE INDEX knowledge_chunk_context_idx ON knowledge_chunk (context_id);
CREATE INDEX knowledge_chunk_embedding_idx ON knowledge_chunk USING hnsw (embedding vector_cosine_ops);
