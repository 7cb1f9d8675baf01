-- Issue 22: what a clip is, so unsent recordings can be swept. A `recording` is audio a user
-- recorded and had transcribed; one that never became a message (discarded in the composer,
-- a closed tab) or whose message was deleted is removed after VOICE_UNSENT_CLIP_TTL_S by the
-- voice function's schedule. `speech` is audio `voice.speak_v1` made for a workflow: kept.
ALTER TABLE voice_clips
  ADD COLUMN kind TEXT NOT NULL DEFAULT 'recording' CHECK (kind IN ('recording', 'speech'));
CREATE INDEX voice_clips_unsent_idx ON voice_clips (created_at)
  WHERE message_id IS NULL AND kind = 'recording';
