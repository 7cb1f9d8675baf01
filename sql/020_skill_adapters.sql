-- Issue 20 items 4 and 5 (SPEC §7.3-7.4): skill adapters trained on a cluster's events, and
-- the pruning and merging of adapters, all through ConfigOps patches.

-- A training job is a persona's (one user's feedback, as before) or a skill's: the events of
-- the clusters in `cluster_ids` (two or more when a merge retrains the surviving skill on its
-- own cluster and the merged one's). A global skill's job has no single user: `user_id` is
-- the adapter's owner, NULL for a global adapter.
ALTER TABLE training_job ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE training_job
  ADD COLUMN kind TEXT NOT NULL DEFAULT 'persona' CHECK (kind IN ('persona', 'skill')),
  ADD COLUMN cluster_ids UUID[];
ALTER TABLE training_job ADD CONSTRAINT training_job_kind_target_check CHECK (
  (kind = 'persona' AND user_id IS NOT NULL AND cluster_ids IS NULL)
  OR (kind = 'skill' AND cardinality(cluster_ids) >= 1)
);

-- At most one queued or running persona job per user (as before), and one per skill adapter:
-- a user's own skill job no longer blocks their persona's.
DROP INDEX training_job_one_active_per_user_idx;
CREATE UNIQUE INDEX training_job_one_active_per_user_idx ON training_job (user_id)
  WHERE status IN ('queued', 'running') AND kind = 'persona';
CREATE UNIQUE INDEX training_job_one_active_per_skill_idx ON training_job (adapter_id)
  WHERE status IN ('queued', 'running') AND kind = 'skill';

-- The skill adapter bound to a cluster (at most one: the router activates it by the cluster's
-- centroid, and SPEC §7.3 proposes a skill only for a cluster without one).
CREATE UNIQUE INDEX artifact_skill_cluster_idx ON artifact ((schema->>'cluster_id'))
  WHERE type = 'adapter.lora' AND schema->>'cluster_id' IS NOT NULL;
