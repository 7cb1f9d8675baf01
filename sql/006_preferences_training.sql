-- SPEC §2.6 preference events, adapter router state and training jobs.
CREATE TABLE preference_event (
  id                 BIGSERIAL PRIMARY KEY,
  user_id            UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  conversation_id    UUID NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  message_id         UUID NOT NULL REFERENCES message(id) ON DELETE CASCADE,
  created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
  explicit_signal    TEXT,
  score              DOUBLE PRECISION CHECK (score BETWEEN -1 AND 1),
  corrected_text     TEXT,
  context_embedding  vector(384) NOT NULL,
  context_text       TEXT,
  cluster_id         UUID REFERENCES semantic_cluster(id) ON DELETE SET NULL,
  meta               JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX preference_event_user_created_idx ON preference_event (user_id, created_at DESC);
CREATE INDEX preference_event_cluster_idx ON preference_event (cluster_id);
CREATE INDEX preference_event_embedding_idx ON preference_event
  USING hnsw (context_embedding vector_cosine_ops);

CREATE TABLE adapter_router_state (
  artifact_id      UUID PRIMARY KEY REFERENCES artifact(id) ON DELETE CASCADE,
  centroid_vec     vector(384),
  usage_count      BIGINT NOT NULL DEFAULT 0,
  success_score    DOUBLE PRECISION DEFAULT 0.0,
  last_used_at     TIMESTAMPTZ,
  last_trained_at  TIMESTAMPTZ,
  meta             JSONB NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE training_job (
  id                    UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  adapter_id            UUID NOT NULL REFERENCES artifact(id) ON DELETE CASCADE,
  user_id               UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
  status                TEXT NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'rejected')),
  num_events            INT,
  loss                  DOUBLE PRECISION,
  dataset_path          TEXT,
  new_version           INT,
  preference_event_ids  BIGINT[],
  meta                  JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX training_job_user_status_idx ON training_job (user_id, status);
-- At most one queued or running job per user (SPEC §5.4 scheduling).
CREATE UNIQUE INDEX training_job_one_active_per_user_idx ON training_job (user_id)
  WHERE status IN ('queued', 'running');
