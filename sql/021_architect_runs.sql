-- The architect step's runs (issue 20 item 6). An admin's "run now" is queued (ArchitectQueue)
-- instead of answered inline: one model call per artifact takes longer than API Gateway's
-- 29 seconds. Each run, scheduled or asked for, is a row the admin console follows.
CREATE TABLE architect_run (
  id            BIGSERIAL PRIMARY KEY,
  trigger       TEXT NOT NULL CHECK (trigger IN ('schedule', 'admin')),
  requested_by  UUID REFERENCES app_user(id) ON DELETE SET NULL,
  status        TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'skipped', 'failed')),
  report        JSONB,
  error         TEXT,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  started_at    TIMESTAMPTZ,
  finished_at   TIMESTAMPTZ
);
CREATE INDEX architect_run_created_idx ON architect_run (id DESC);
-- At most one run waits or runs at a time: a second "run now" is answered with that one.
CREATE UNIQUE INDEX architect_run_one_active_idx ON architect_run ((true))
  WHERE status IN ('queued', 'running');
