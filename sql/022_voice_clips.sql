-- Issue 22: voice. A clip is audio a user recorded and had transcribed (POST
-- /v1/voice/transcribe), or speech a workflow's `voice.speak_v1` synthesised for them. Its bytes
-- are in the object store under users/{user_id}/voice/{id}.{ext}; the row is written only
-- after the engine accepted the audio and the object is stored, so a refused upload leaves
-- neither. A voice chat turn links the clip to the user message it became (`message_id`);
-- deleting that message (with its conversation) keeps the clip, unlinked.
CREATE TABLE voice_clips (
  id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      UUID NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  object_key   TEXT NOT NULL UNIQUE,
  mime         TEXT NOT NULL,
  size_bytes   BIGINT NOT NULL CHECK (size_bytes > 0),
  duration_s   DOUBLE PRECISION NOT NULL CHECK (duration_s >= 0),
  language     TEXT,
  transcript   TEXT,
  message_id   UUID REFERENCES message(id) ON DELETE SET NULL,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX voice_clips_user_idx ON voice_clips (user_id, created_at DESC);
CREATE INDEX voice_clips_message_idx ON voice_clips (message_id) WHERE message_id IS NOT NULL;
