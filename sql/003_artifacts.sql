-- SPEC §2.3 artifacts (workflows, policies, tools, adapters...) and their versions.
CREATE TABLE artifact (
  id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_user_id  UUID REFERENCES app_user(id) ON DELETE CASCADE,
  type           TEXT NOT NULL,
  name           TEXT NOT NULL,
  description    TEXT,
  schema         JSONB NOT NULL,
  fs_path        TEXT,
  version        INT NOT NULL DEFAULT 1,
  created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  visibility     TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'shared', 'global')),
  meta           JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX artifact_owner_type_idx ON artifact (owner_user_id, type);
-- Global artifacts are unique by (type, name) so seeds can upsert them.
CREATE UNIQUE INDEX artifact_global_name_idx ON artifact (type, name) WHERE owner_user_id IS NULL;
CREATE UNIQUE INDEX artifact_owner_name_idx ON artifact (owner_user_id, type, name)
  WHERE owner_user_id IS NOT NULL;

CREATE TABLE artifact_version (
  id           BIGSERIAL PRIMARY KEY,
  artifact_id  UUID NOT NULL REFERENCES artifact(id) ON DELETE CASCADE,
  version      INT NOT NULL,
  schema       JSONB NOT NULL,
  fs_path      TEXT,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  created_by   TEXT NOT NULL CHECK (created_by IN ('system', 'user', 'llm')),
  change_note  TEXT
);
CREATE UNIQUE INDEX artifact_version_artifact_version_idx ON artifact_version (artifact_id, version);
