-- SPEC §2.4 emergent domains and skills; centroids are MiniLM vectors (384-d).
CREATE TABLE semantic_cluster (
  id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id             UUID REFERENCES app_user(id) ON DELETE CASCADE,
  centroid            vector(384),
  size                INT NOT NULL,
  label               TEXT,
  description         TEXT,
  sample_message_ids  UUID[],
  created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  meta                JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX semantic_cluster_user_idx ON semantic_cluster (user_id);
CREATE INDEX semantic_cluster_centroid_idx ON semantic_cluster USING hnsw (centroid vector_cosine_ops);
