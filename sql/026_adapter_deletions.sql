-- Deleted adapter versions leave every inference task's cache at once (issue 23): each task
-- LISTENs on `adapter_version_deleted` (functions/inference/adapter_deletions.py), and a
-- deleted version row, whether deleted on its own or by a cascade (an account purge deletes
-- app_user, which cascades to the user's artifacts and their versions), sends its adapter id
-- and version. NOTIFY is transactional: the tasks hear of it only if the deletion commits.
-- Versions of other artifact kinds are sent too (a row no longer says its kind once its
-- artifact is gone); the tasks ignore versions they do not hold.
CREATE OR REPLACE FUNCTION notify_artifact_version_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('adapter_version_deleted',
                    json_build_object('adapter_id', OLD.artifact_id, 'version', OLD.version)::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS artifact_version_deleted ON artifact_version;
CREATE TRIGGER artifact_version_deleted AFTER DELETE ON artifact_version
  FOR EACH ROW EXECUTE FUNCTION notify_artifact_version_deleted();
