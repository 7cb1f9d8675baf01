-- Issue 7: uploaded files, their ingestion into knowledge contexts, and hybrid search.
--
-- A file is stored once (`user_file`, bytes in the object store under users/{owner}/files/).
-- Attaching it to a context makes a `context_source` row, which is also the unit of
-- ingestion: its chunks are cut with that context's settings (window, PII scrub), so the same
-- file may be chunked differently in two contexts. Deleting a file or detaching it removes
-- its chunks by cascade.

CREATE TABLE user_file (
  id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_user_id  UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  name           TEXT NOT NULL,          -- sanitized name as the user sees it (the "path")
  object_key     TEXT NOT NULL UNIQUE,   -- users/{owner}/files/{id}/{name}
  kind           TEXT NOT NULL CHECK (kind IN ('text', 'markdown', 'pdf', 'html')),
  content_type   TEXT,
  size_bytes     BIGINT CHECK (size_bytes >= 0),
  checksum       TEXT,                   -- sha256 hex of the bytes, once known
  -- uploading: presigned, bytes not confirmed; stored: in the store, no context asked for it;
  -- then the latest ingestion's state.
  status         TEXT NOT NULL DEFAULT 'uploading'
                 CHECK (status IN ('uploading', 'stored', 'pending', 'processing', 'ready', 'failed')),
  error          TEXT,
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  meta           JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX user_file_owner_idx ON user_file (owner_user_id, created_at DESC, id DESC);
-- SPEC §18 "dedupe by (checksum, path)": the same bytes under the same name are one file.
CREATE INDEX user_file_dedupe_idx ON user_file (owner_user_id, name, checksum);

-- Global contexts are readable by every user (admins make them); the active embedding version
-- is the one retrieval reads, switched over after a re-embed (SPEC §18).
ALTER TABLE knowledge_context
  ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'global')),
  ADD COLUMN embedding_version TEXT NOT NULL DEFAULT 'all-MiniLM-L6-v2';
CREATE INDEX knowledge_context_global_idx ON knowledge_context (visibility) WHERE visibility = 'global';

ALTER TABLE context_source
  ADD COLUMN file_id UUID REFERENCES user_file(id) ON DELETE CASCADE,
  ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
             CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
  ADD COLUMN error TEXT,
  ADD COLUMN checksum TEXT,            -- of the bytes last ingested (dedupe)
  ADD COLUMN embedding_version TEXT,   -- of the chunks last written
  ADD COLUMN chunk_count INT NOT NULL DEFAULT 0,
  ADD COLUMN attempts INT NOT NULL DEFAULT 0,
  ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  ADD COLUMN queued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  ADD COLUMN ingested_at TIMESTAMPTZ;
CREATE UNIQUE INDEX context_source_file_uq ON context_source (context_id, file_id);
CREATE INDEX context_source_file_idx ON context_source (file_id);
CREATE INDEX context_source_stuck_idx ON context_source (queued_at)
  WHERE status IN ('pending', 'processing');

ALTER TABLE knowledge_chunk
  DROP CONSTRAINT IF EXISTS knowledge_chunk_context_id_fs_path_chunk_index_key,
  ADD COLUMN source_id UUID REFERENCES context_source(id) ON DELETE CASCADE,
  ADD COLUMN file_id UUID REFERENCES user_file(id) ON DELETE CASCADE,
  ADD COLUMN embedding_version TEXT NOT NULL DEFAULT 'all-MiniLM-L6-v2',
  ADD COLUMN char_start INT,
  ADD COLUMN char_end INT,
  ADD COLUMN token_count INT,
  ADD COLUMN heading TEXT,
  ADD COLUMN page INT,
  -- Full-text side of hybrid search: the heading path counts, weighted above the body.
  ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(heading, '')), 'A')
    || setweight(to_tsvector('english', content), 'B')
  ) STORED;
CREATE UNIQUE INDEX knowledge_chunk_source_uq
  ON knowledge_chunk (source_id, embedding_version, chunk_index);
CREATE INDEX knowledge_chunk_file_idx ON knowledge_chunk (file_id);
CREATE INDEX knowledge_chunk_tsv_idx ON knowledge_chunk USING gin (tsv);
