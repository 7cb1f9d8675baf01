-- A user's data under the user's control (issue 23 item 4, DESIGN.md §5a).
--
-- `account_export`: one zip of everything the user has, written by the account_data function
-- from ExportQueue to exports/{user_id}/{id}.zip in the data bucket (outside users/{uid}/, so
-- a purge and an export never race on the same prefix), removed past its expires_at.
CREATE TABLE account_export (
  id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  status       TEXT NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued', 'running', 'ready', 'failed', 'expired')),
  object_key   TEXT,
  size_bytes   BIGINT,
  error        TEXT,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  started_at   TIMESTAMPTZ,
  finished_at  TIMESTAMPTZ,
  expires_at   TIMESTAMPTZ
);
CREATE INDEX account_export_user_idx ON account_export (user_id, created_at DESC, id DESC);
-- One export in flight per user (POST answers 409 export_in_progress).
CREATE UNIQUE INDEX account_export_one_active_idx ON account_export (user_id)
  WHERE status IN ('queued', 'running');
CREATE INDEX account_export_expiry_idx ON account_export (expires_at) WHERE status = 'ready';

-- `account_purge`: an account being deleted. The row outlives the user (no foreign key): it
-- holds the user's id only while the purge runs (cleared when it is done) and the stable
-- pseudonym the audit log keeps instead. Each purge step is idempotent, so a purge that
-- stopped half-way (a crash, a dependency down) is queued again and resumes.
CREATE TABLE account_purge (
  id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id       UUID UNIQUE,
  pseudonym     UUID NOT NULL UNIQUE,
  requested_by  TEXT NOT NULL CHECK (requested_by IN ('user', 'admin')),
  status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
  attempts      INT NOT NULL DEFAULT 0,
  last_error    TEXT,
  requested_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  finished_at   TIMESTAMPTZ,
  CHECK ((status = 'done') = (user_id IS NULL))
);
CREATE INDEX account_purge_pending_idx ON account_purge (requested_at) WHERE status = 'pending';

-- The audit log stays append-only, with one sanctioned rewrite: a purge pseudonymises the
-- deleted user's events (ids replaced by the pseudonym, email and address removed) and seals
-- the hash chain again (shared.domain.account_data.pseudonyms). It says so for its own
-- transaction (SET LOCAL acs.audit_pseudonymise = 'on'); even then a row keeps its id, its
-- event, its time and its request id, and nothing is ever deleted.
CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND coalesce(current_setting('acs.audit_pseudonymise', true), '') = 'on'
     AND NEW.id = OLD.id AND NEW.event = OLD.event AND NEW.occurred_at = OLD.occurred_at
     AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
END;
$$;
