-- The admin console lists every user's training jobs newest first (GET /v1/admin/training/jobs,
-- keyset-paged on (created_at, id)); the per-user index (user_id, created_at) cannot serve an
-- unfiltered listing, which would sort the whole table for each page.
CREATE INDEX training_job_created_idx ON training_job (created_at DESC, id DESC);
