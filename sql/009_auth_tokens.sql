-- Issue 5: refresh tokens, rotated on every use. A session is one token family: presenting a
-- token that was already used revokes the whole session (reuse detection).
CREATE TABLE refresh_token (
  id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id  UUID NOT NULL REFERENCES auth_session(id) ON DELETE CASCADE,
  token_hash  TEXT NOT NULL UNIQUE,
  issued_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at  TIMESTAMPTZ NOT NULL,
  used_at     TIMESTAMPTZ
);
CREATE INDEX refresh_token_session_idx ON refresh_token (session_id);
