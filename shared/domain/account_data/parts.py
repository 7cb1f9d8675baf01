"""What an export holds: each part a JSON array of the user's rows (one query each), plus
every object the user has in the store under users/{uid}/ (uploaded files as they were sent,
voice recordings, adapter versions and their training datasets).

Secrets are no part of anyone's data to take away: password hashes, TOTP seeds, recovery
codes and refresh tokens are left out; sessions are listed without them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str  # the file in the zip: {name}.json
    description: str
    sql: str  # selects one jsonb per row; `%(uid)s` is the user's id


PARTS: tuple[Part, ...] = (
    Part("account", "the account (email, handle, role, when it was made)",
         "SELECT jsonb_build_object('id', id, 'email', email, 'handle', handle, 'role', role,"
         " 'created_at', created_at, 'email_verified_at', email_verified_at)"
         " FROM app_user WHERE id = %(uid)s"),
    Part("settings", "settings", "SELECT to_jsonb(t) FROM user_settings t WHERE user_id = %(uid)s"),
    Part("sign_in_providers", "linked sign-in providers (OIDC)",
         "SELECT to_jsonb(t) FROM user_auth_provider t WHERE user_id = %(uid)s"),
    Part("sessions", "sign-in sessions (device, address, times; no tokens)",
         "SELECT to_jsonb(t) FROM auth_session t WHERE user_id = %(uid)s ORDER BY created_at"),
    Part("conversations", "conversations",
         "SELECT to_jsonb(t) FROM conversation t WHERE user_id = %(uid)s ORDER BY created_at"),
    Part("messages", "every message of those conversations",
         "SELECT to_jsonb(t) FROM message t WHERE conversation_id IN"
         " (SELECT id FROM conversation WHERE user_id = %(uid)s)"
         " ORDER BY conversation_id, created_at"),
    Part("files", "uploaded files (their bytes are under objects/files/)",
         "SELECT to_jsonb(t) FROM user_file t WHERE owner_user_id = %(uid)s ORDER BY created_at"),
    Part("contexts", "knowledge contexts",
         "SELECT to_jsonb(t) FROM knowledge_context t WHERE owner_user_id = %(uid)s"),
    Part("context_sources", "the files and texts of those contexts",
         "SELECT to_jsonb(t) FROM context_source t"
         " WHERE context_id IN (SELECT id FROM knowledge_context WHERE owner_user_id = %(uid)s)"),
    Part("preference_events", "feedback given on answers (preferences)",
         "SELECT to_jsonb(t) FROM preference_event t WHERE user_id = %(uid)s ORDER BY id"),
    Part("personalization", "personalization settings",
         "SELECT to_jsonb(t) FROM personalization t WHERE user_id = %(uid)s"),
    Part("personalization_instructions", "personalization instructions",
         "SELECT to_jsonb(t) FROM persona_instruction t WHERE user_id = %(uid)s"
         " ORDER BY created_at"),
    Part("clusters", "the user's own clusters of feedback (centroids left out)",
         "SELECT to_jsonb(t) - 'centroid' FROM semantic_cluster t WHERE user_id = %(uid)s"),
    Part("artifacts", "artifacts the user owns (adapters among them)",
         "SELECT to_jsonb(t) FROM artifact t WHERE owner_user_id = %(uid)s ORDER BY created_at"),
    Part("artifact_versions", "every version of those artifacts (adapter versions among them;"
         " the adapter files are under objects/adapters/)",
         "SELECT to_jsonb(t) FROM artifact_version t WHERE artifact_id IN"
         " (SELECT id FROM artifact WHERE owner_user_id = %(uid)s)"
         " ORDER BY artifact_id, version"),
    Part("config_patches", "changes proposed to the user's artifacts",
         "SELECT to_jsonb(t) FROM config_patch t WHERE owner_user_id = %(uid)s"
         " OR proposed_by = %(uid)s ORDER BY id"),
    Part("training_jobs", "training jobs of the user's adapters",
         "SELECT to_jsonb(t) FROM training_job t WHERE user_id = %(uid)s ORDER BY created_at"),
    Part("voice_clips", "voice recordings and their transcripts (audio under objects/voice/)",
         "SELECT to_jsonb(t) FROM voice_clips t WHERE user_id = %(uid)s ORDER BY created_at"),
    Part("exports", "earlier exports of this account",
         "SELECT to_jsonb(t) - 'object_key' FROM account_export t WHERE user_id = %(uid)s"
         " ORDER BY created_at"),
)  # fmt: skip
