-- Artifact rows carry their kind (SPEC §2.3: workflow.chat, policy.routing, tool.spec, ...) as
-- `type`, which is what the artifacts API validates against and filters on. Rows seeded before
-- this used the family ('workflow', 'policy', 'tool'): give them the kind their schema names,
-- unless a row of that kind and name exists already for the same owner.
UPDATE artifact AS a
   SET type = a.schema->>'kind'
 WHERE position('.' IN a.type) = 0
   AND a.schema->>'kind' LIKE '%.%'
   AND NOT EXISTS (
     SELECT 1 FROM artifact b
      WHERE b.type = a.schema->>'kind' AND b.name = a.name
        AND b.owner_user_id IS NOT DISTINCT FROM a.owner_user_id);

-- The artifact list: newest first over what a user may read (own, shared, global).
CREATE INDEX artifact_updated_idx ON artifact (updated_at DESC, id DESC);
