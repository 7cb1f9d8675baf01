-- SPEC §2.1 users and auth, with a role column for the admin surface.
CREATE TABLE app_user (
  id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email       CITEXT UNIQUE NOT NULL,
  handle      TEXT,
  role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  plan_tier   TEXT NOT NULL DEFAULT 'free',
  is_active   BOOLEAN NOT NULL DEFAULT TRUE,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  meta        JSONB NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE user_auth_credential (
  user_id          UUID PRIMARY KEY REFERENCES app_user(id) ON DELETE CASCADE,
  password_hash    TEXT,
  password_algo    TEXT,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_updated_at  TIMESTAMPTZ
);

CREATE TABLE user_auth_provider (
  id            BIGSERIAL PRIMARY KEY,
  user_id       UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  provider      TEXT NOT NULL,
  provider_uid  TEXT NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  UNIQUE (provider, provider_uid)
);
CREATE INDEX user_auth_provider_user_idx ON user_auth_provider (user_id);

CREATE TABLE user_settings (
  user_id        UUID PRIMARY KEY REFERENCES app_user(id) ON DELETE CASCADE,
  locale         TEXT,
  timezone       TEXT,
  default_voice  TEXT,
  default_style  JSONB,
  flags          JSONB
);

CREATE TABLE auth_session (
  id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  expires_at  TIMESTAMPTZ NOT NULL,
  revoked_at  TIMESTAMPTZ,
  user_agent  TEXT,
  ip_addr     INET,
  meta        JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX auth_session_user_idx ON auth_session (user_id);
