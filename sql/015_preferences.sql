-- Issue 18 (items 1-3): feedback as preference events, the persona's instructions and the
-- user's controls over learning, and what scheduling training jobs needs.

-- One event per (user, message): a second feedback on the same answer replaces the first.
-- Rows written before this key existed: the newest of each pair stays.
DELETE FROM preference_event p USING preference_event q
 WHERE p.user_id = q.user_id AND p.message_id = q.message_id AND p.id < q.id;
CREATE UNIQUE INDEX preference_event_user_message_idx ON preference_event (user_id, message_id);

ALTER TABLE preference_event
  ADD COLUMN notes TEXT,
  ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  -- Training filters: why the content check refused the message, correction or notes (the
  -- event is kept and listed, never trained on); NULL: trainable.
  ADD COLUMN filtered_reason TEXT,
  -- The job that first took this event as new (queued, running or done); NULL: new. A job
  -- that fails or is cancelled gives its events back.
  ADD COLUMN job_id UUID REFERENCES training_job(id) ON DELETE SET NULL;
ALTER TABLE preference_event ADD CONSTRAINT preference_event_signal_check
  CHECK (explicit_signal IN ('like', 'dislike', 'always', 'never')) NOT VALID;
-- The scheduler counts a user's new trainable events on every feedback.
CREATE INDEX preference_event_user_new_idx ON preference_event (user_id)
  WHERE job_id IS NULL AND filtered_reason IS NULL;
CREATE INDEX preference_event_job_idx ON preference_event (job_id) WHERE job_id IS NOT NULL;

-- What the user controls: the persona adapter made on their first feedback, whether learning
-- is paused, and when they last reset the model to the base (events before it are not
-- trained on again). The row is also the per-user lock that serialises feedback and
-- scheduling.
CREATE TABLE personalization (
  user_id          UUID PRIMARY KEY REFERENCES app_user(id) ON DELETE CASCADE,
  adapter_id       UUID REFERENCES artifact(id) ON DELETE SET NULL,
  learning_paused  BOOLEAN NOT NULL DEFAULT false,
  reset_at         TIMESTAMPTZ,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- `always` / `never` notes become the persona's instructions (prompt text, applied at once).
-- `learned_version`: the persona weight version whose training took this text in; NULL until
-- then, and again after an edit or a reset. An instruction is injected as prompt text unless
-- the version being served learned it.
CREATE TABLE persona_instruction (
  id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id          UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  kind             TEXT NOT NULL CHECK (kind IN ('always', 'never')),
  text             TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
  source_event_id  BIGINT UNIQUE REFERENCES preference_event(id) ON DELETE CASCADE,
  learned_version  INT,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX persona_instruction_user_idx ON persona_instruction (user_id, created_at DESC);

-- Training jobs: `cancelled` (learning paused, or the model reset, before the job ended), and
-- when a job started and ended (the cooldown runs from the end of the last job that ran).
ALTER TABLE training_job DROP CONSTRAINT training_job_status_check;
ALTER TABLE training_job ADD CONSTRAINT training_job_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'rejected', 'cancelled'));
ALTER TABLE training_job
  ADD COLUMN started_at TIMESTAMPTZ,
  ADD COLUMN finished_at TIMESTAMPTZ;
CREATE INDEX training_job_user_created_idx ON training_job (user_id, created_at DESC);
-- Sweeps look for running jobs whose heartbeat stopped.
CREATE INDEX training_job_running_idx ON training_job (updated_at) WHERE status = 'running';
