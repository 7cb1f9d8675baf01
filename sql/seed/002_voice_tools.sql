-- The voice tools (issue 22) as global tool.spec artifacts, so a workflow node can transcribe
-- one of the user's clips or speak a text into a new clip; implementations in
-- shared/domain/tools/voice.py. Re-running is a no-op, as in 001 (never an overwrite).
WITH seed(type, name, description, schema) AS (
  VALUES
  ('tool.spec', 'voice.transcribe_v1', 'Transcribe one of the user''s voice clips.',
   '{"kind": "tool.spec", "name": "voice.transcribe_v1",
     "description": "Transcribe one of the user''s voice clips (speech-to-text, Whisper).",
     "timeout_ms": 60000, "max_retries": 1,
     "input_schema": {"type": "object", "required": ["clip_id"], "additionalProperties": false,
                      "properties": {"clip_id": {"type": "string", "format": "uuid"},
                                     "language": {"type": "string", "pattern": "^[a-z]{2,3}$"}}},
     "output_schema": {"type": "object", "required": ["text", "language", "duration_s"],
                       "properties": {"text": {"type": "string"},
                                      "language": {"type": "string"},
                                      "duration_s": {"type": "number"},
                                      "clip_id": {"type": "string"}}}}'::jsonb),
  ('tool.spec', 'voice.speak_v1', 'Speak a text into a new voice clip of the user.',
   '{"kind": "tool.spec", "name": "voice.speak_v1",
     "description": "Speak a text (text-to-speech, Piper) into a new WAV clip of the user.",
     "timeout_ms": 60000, "max_retries": 1,
     "input_schema": {"type": "object", "required": ["text"], "additionalProperties": false,
                      "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 4000},
                                     "voice": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}},
     "output_schema": {"type": "object", "required": ["clip_id", "uri", "duration_s"],
                       "properties": {"clip_id": {"type": "string"}, "uri": {"type": "string"},
                                      "mime": {"type": "string"},
                                      "duration_s": {"type": "number"}}}}'::jsonb)
),
inserted AS (
  INSERT INTO artifact (owner_user_id, type, name, description, schema, visibility, version)
  SELECT NULL, type, name, description, schema, 'global', 1 FROM seed
  ON CONFLICT (type, name) WHERE owner_user_id IS NULL DO NOTHING
  RETURNING id, schema
)
INSERT INTO artifact_version (artifact_id, version, schema, created_by, change_note)
SELECT id, 1, schema, 'system', 'seed' FROM inserted
ON CONFLICT (artifact_id, version) DO NOTHING;
