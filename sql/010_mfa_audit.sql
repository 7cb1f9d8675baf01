-- Issue 5: email verification, TOTP MFA with recovery codes, and the security audit log.
ALTER TABLE app_user ADD COLUMN email_verified_at TIMESTAMPTZ;

-- The TOTP seed is sealed (AES-GCM, shared/auth/secretbox.py); `enabled_at` is NULL while the
-- user has started set-up but not yet proved a code. `last_step` is the last accepted time
-- step: a code is accepted once (no replay within its 90-second window).
CREATE TABLE user_mfa (
  user_id      UUID PRIMARY KEY REFERENCES app_user(id) ON DELETE CASCADE,
  secret_sealed TEXT NOT NULL,
  enabled_at   TIMESTAMPTZ,
  last_step    BIGINT,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One-time recovery codes, stored as SHA-256 digests (each code carries 80 random bits).
CREATE TABLE mfa_recovery_code (
  id         BIGSERIAL PRIMARY KEY,
  user_id    UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  code_hash  TEXT NOT NULL,
  used_at    TIMESTAMPTZ,
  UNIQUE (user_id, code_hash)
);

-- Security events, append-only and hash-chained: each row's hash covers its content and the
-- previous row's hash, so an edited, removed or reordered row breaks the chain from there on.
-- User ids carry no foreign key: the record outlives a deleted account.
CREATE TABLE audit_event (
  id               BIGSERIAL PRIMARY KEY,
  occurred_at      TIMESTAMPTZ NOT NULL,
  event            TEXT NOT NULL,
  actor_user_id    UUID,
  subject_user_id  UUID,
  ip_addr          TEXT,
  user_agent       TEXT,
  request_id       TEXT,
  details          JSONB NOT NULL DEFAULT '{}'::jsonb,
  prev_hash        TEXT NOT NULL,
  hash             TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_event_subject_idx ON audit_event (subject_user_id, id);
CREATE INDEX audit_event_event_idx ON audit_event (event, id);

CREATE FUNCTION audit_event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only();
