-- SPEC §2.7 ConfigOps proposals.
CREATE TABLE config_patch (
  id             BIGSERIAL PRIMARY KEY,
  artifact_id    UUID NOT NULL REFERENCES artifact(id) ON DELETE CASCADE,
  proposer       TEXT NOT NULL CHECK (proposer IN ('system_llm', 'human_admin', 'user')),
  patch          JSONB NOT NULL,
  justification  TEXT,
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'rejected', 'applied', 'failed')),
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  decided_at     TIMESTAMPTZ,
  applied_at     TIMESTAMPTZ,
  meta           JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX config_patch_status_idx ON config_patch (status, created_at);
