-- ConfigOps (issue 20): a patch is proposed, validated and dry-run, decided, then applied by the
-- apply-patch queue function. Rows written before this (none in practice) stay valid: every new
-- column is nullable or has a default, and the new checks hold for them.

-- A patch that creates an artifact (a new skill adapter, say) has no artifact yet: it names the
-- kind to create, with the name, visibility and owner the new artifact gets (owner NULL: the
-- system's). `kind` and `owner_user_id` are also kept for a patch on an existing artifact, so
-- the list of a user's patches needs no join and outlives a deleted artifact's id.
ALTER TABLE config_patch ALTER COLUMN artifact_id DROP NOT NULL;
ALTER TABLE config_patch
  ADD COLUMN kind             TEXT,
  ADD COLUMN owner_user_id    UUID REFERENCES app_user(id) ON DELETE CASCADE,
  ADD COLUMN new_name         TEXT,
  ADD COLUMN new_description  TEXT,
  ADD COLUMN new_visibility   TEXT CHECK (new_visibility IN ('private', 'shared', 'global')),
  -- The version the patch was written against (NULL for a create); apply refuses a moved base.
  ADD COLUMN base_version     INT CHECK (base_version >= 1),
  -- Who proposed (NULL: the system) and who decided (NULL: not yet, or an automatic rule).
  ADD COLUMN proposed_by      UUID REFERENCES app_user(id) ON DELETE CASCADE,
  ADD COLUMN decided_by       UUID REFERENCES app_user(id) ON DELETE SET NULL,
  ADD COLUMN decision_reason  TEXT,
  -- {"ok": bool, "problems": [{path, message}]} at proposal; the dry-run's summary.
  ADD COLUMN validation       JSONB,
  ADD COLUMN dry_run          JSONB,
  -- The artifact version the apply wrote, and why a patch failed (stale base, a check...).
  ADD COLUMN applied_version  INT,
  ADD COLUMN failure_reason   TEXT,
  ADD COLUMN updated_at       TIMESTAMPTZ NOT NULL DEFAULT now();

ALTER TABLE config_patch ADD CONSTRAINT config_patch_target_check
  CHECK (artifact_id IS NOT NULL OR (kind IS NOT NULL AND new_name IS NOT NULL));

-- `applying`: approved and its apply step queued; the apply-patch function moves it on.
ALTER TABLE config_patch DROP CONSTRAINT config_patch_status_check;
ALTER TABLE config_patch ADD CONSTRAINT config_patch_status_check
  CHECK (status IN ('pending', 'approved', 'rejected', 'applying', 'applied', 'failed'));

-- The apply's idempotency guard: one artifact version comes from at most one patch, and an
-- applied patch names the version it wrote (a redelivered message finds it applied).
CREATE UNIQUE INDEX config_patch_applied_version_idx ON config_patch (artifact_id, applied_version)
  WHERE applied_version IS NOT NULL;
-- Lists: a user's own patches (proposed by them or on their artifacts), newest first by id.
CREATE INDEX config_patch_proposed_by_idx ON config_patch (proposed_by, id DESC);
CREATE INDEX config_patch_owner_idx ON config_patch (owner_user_id, id DESC);
CREATE INDEX config_patch_artifact_idx ON config_patch (artifact_id, id DESC);
