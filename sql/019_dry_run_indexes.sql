-- A ConfigOps dry-run replays the newest turns that used an artifact (shared/domain/configops/
-- dry_run_sample.py): which artifact is read from the assistant message's trace. Without these
-- a global policy's sample scans every message; with them it reads the newest N in index order.
CREATE INDEX message_trace_policy_idx
  ON message ((meta->'trace'->'router'->>'policy_id'), created_at DESC, id DESC)
  WHERE sender = 'assistant';
CREATE INDEX message_trace_workflow_idx
  ON message ((meta->'trace'->'inputs'->'workflow'->>'id'), created_at DESC, id DESC)
  WHERE sender = 'assistant';
