-- Issue 20 item 3 (SPEC §7.1-7.2): the cluster function's per-user and global clusters of
-- preference events, their deterministic keywords and model labels, which events each holds,
-- and the user's consent to global clustering.

-- A cluster is a user's (user_id set) or global (user_id NULL): `scope` says which, so the
-- global ones have an index of their own. `keywords`: c-TF-IDF terms, the label the model's
-- falls back to; `labeled_by`: which of the two `label` holds. A cluster a later run no longer
-- finds is retired (kept, an adapter may name it), never deleted.
ALTER TABLE semantic_cluster
  ADD COLUMN scope TEXT NOT NULL DEFAULT 'user' CHECK (scope IN ('user', 'global')),
  ADD COLUMN keywords TEXT[] NOT NULL DEFAULT '{}',
  ADD COLUMN labeled_by TEXT CHECK (labeled_by IN ('keywords', 'model')),
  ADD COLUMN positive_count INT NOT NULL DEFAULT 0,
  ADD COLUMN negative_count INT NOT NULL DEFAULT 0,
  ADD COLUMN sample_event_ids BIGINT[] NOT NULL DEFAULT '{}',
  ADD COLUMN retired_at TIMESTAMPTZ;
UPDATE semantic_cluster SET scope = 'global' WHERE user_id IS NULL;
ALTER TABLE semantic_cluster ADD CONSTRAINT semantic_cluster_scope_owner_check
  CHECK ((scope = 'user') = (user_id IS NOT NULL));
-- The router's nearest global clusters: HNSW over the live global centroids only, so a filter
-- on other users' rows never starves the index scan (a user's own few clusters are read
-- through semantic_cluster_user_idx and sorted exactly).
CREATE INDEX semantic_cluster_global_centroid_idx ON semantic_cluster
  USING hnsw (centroid vector_cosine_ops) WHERE user_id IS NULL AND retired_at IS NULL;
-- The admin listing, newest change first.
CREATE INDEX semantic_cluster_updated_idx ON semantic_cluster (updated_at DESC, id DESC);

-- Which cluster each event is in, per scope: an event may be in its user's cluster and in a
-- global one. (preference_event.cluster_id keeps the user cluster, as before.)
CREATE TABLE cluster_event (
  event_id     BIGINT NOT NULL REFERENCES preference_event(id) ON DELETE CASCADE,
  scope        TEXT NOT NULL CHECK (scope IN ('user', 'global')),
  cluster_id   UUID NOT NULL REFERENCES semantic_cluster(id) ON DELETE CASCADE,
  similarity   REAL NOT NULL,
  assigned_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, scope)
);
CREATE INDEX cluster_event_cluster_idx ON cluster_event (cluster_id);

-- Consent (off by default): only the events of users who allow it go into global clusters,
-- so nobody's corrections shape a skill others get without their say.
ALTER TABLE personalization ADD COLUMN global_clustering BOOLEAN NOT NULL DEFAULT false;
