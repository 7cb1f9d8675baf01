-- Issue 6: regenerate and edit-and-resubmit make a new branch instead of rewriting history.
-- A message's parent is the message it answers or follows; siblings share a parent.
ALTER TABLE message ADD COLUMN parent_id UUID REFERENCES message(id) ON DELETE SET NULL;
CREATE INDEX message_parent_idx ON message (parent_id);
