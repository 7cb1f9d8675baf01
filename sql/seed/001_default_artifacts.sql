-- Default global artifacts, `type` being the kind (sql/012). Re-running is a no-op: an artifact
-- that ConfigOps has since changed keeps its newer versions (ON CONFLICT DO NOTHING, never an
-- overwrite).
WITH seed(type, name, description, schema) AS (
  VALUES
  ('workflow.chat', 'default_chat', 'Answer from bound knowledge contexts when there are any, else chat.',
   '{"kind": "workflow.chat", "entrypoint": "node_route", "timeout_ms": 120000, "max_retries": 1,
     "nodes": [
       {"id": "node_route", "type": "switch", "branches": [
         {"when": "len(input.context_ids) > 0", "next": "node_rag"},
         {"when": "true", "next": "node_plain"}]},
       {"id": "node_rag", "type": "tool_call", "tool": "rag.answer_with_context_v1",
        "inputs": {"question": "${input.message}", "contexts": "${input.context_ids}"},
        "outputs": ["answer", "citations"], "next": "node_end"},
       {"id": "node_plain", "type": "tool_call", "tool": "llm.generic_chat_v1",
        "inputs": {"message": "${input.message}"}, "outputs": ["answer"], "next": "node_end"},
       {"id": "node_end", "type": "end"}]}'::jsonb),
  ('policy.routing', 'default_user_routing', 'Persona adapter at a fixed gate; skill adapters by similarity.',
   '{"kind": "policy.routing", "name": "default_user_routing",
     "description": "Select adapters based on context similarity and safety.",
     "max_active_adapters": 3, "weight_floor": 0.05,
     "rules": [
       {"id": "always_persona", "when": "true",
        "action": {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5}},
       {"id": "cluster_near_skill", "when": "cosine_similarity(ctx_embedding, adapter_centroid) > 0.6",
        "action": {"type": "activate_adapter_by_cluster", "cluster_id": "closest", "weight": "similarity"}},
       {"id": "safety_never", "when": "safety_risk == ''high''",
        "action": {"type": "deactivate_all_adapters"}}]}'::jsonb),
  ('tool.spec', 'llm.generic_chat_v1', 'Answer with the base model and the routed adapters.',
   '{"kind": "tool.spec", "name": "llm.generic_chat_v1",
     "description": "Answer with the base model and the routed adapters.",
     "input_schema": {"type": "object", "required": ["message"],
                      "properties": {"message": {"type": "string"}}},
     "output_schema": {"type": "object", "required": ["answer"],
                       "properties": {"answer": {"type": "string"}}}}'::jsonb),
  ('tool.spec', 'rag.answer_with_context_v1', 'Use RAG to answer based on bound knowledge contexts.',
   '{"kind": "tool.spec", "name": "rag.answer_with_context_v1",
     "description": "Use RAG to answer based on bound knowledge contexts, citing chunks.",
     "input_schema": {"type": "object", "required": ["question"],
                      "properties": {"question": {"type": "string"},
                                     "contexts": {"type": "array", "items": {"type": "string"}}}},
     "output_schema": {"type": "object", "required": ["answer"],
                       "properties": {"answer": {"type": "string"},
                                      "citations": {"type": "array"}}}}'::jsonb),
  ('tool.spec', 'llm.intent_classifier_v1', 'Label the intent of a message for workflow branching.',
   '{"kind": "tool.spec", "name": "llm.intent_classifier_v1",
     "description": "Label the intent of a message for workflow branching.",
     "input_schema": {"type": "object", "required": ["message"],
                      "properties": {"message": {"type": "string"}}},
     "output_schema": {"type": "object", "required": ["intent"],
                       "properties": {"intent": {"type": "string"}}}}'::jsonb),
  ('tool.spec', 'memory.summarize_v1', 'Summarize older turns of a conversation (working memory).',
   '{"kind": "tool.spec", "name": "memory.summarize_v1",
     "description": "Summarize older turns of a conversation into a short rolling summary.",
     "input_schema": {"type": "object", "required": ["messages"],
                      "properties": {
                        "messages": {"type": "array", "items": {
                          "type": "object", "required": ["role", "content"],
                          "properties": {"role": {"type": "string"},
                                         "content": {"type": "string"}}}},
                        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 2048}}},
     "output_schema": {"type": "object", "required": ["summary"],
                       "properties": {"summary": {"type": "string"}}}}'::jsonb)
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
