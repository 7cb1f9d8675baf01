"""The audit log keeps a deleted user's events under a pseudonym (issue 23 item 4): the log
is append-only evidence (who did what, when), so the rows stay, but nothing in them names the
person any more.

The pseudonym is a UUID made from HMAC-SHA256(key, user id): stable (every event of the user
gets the same one, so the log still reads as one actor's history) and not reversible without
the key. The rows are rewritten and the hash chain sealed again from the first changed row,
under the log's own writer lock; an `account_purged` event then records that it happened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.platform import audit
from shared.platform.settings import Settings

# Keys of an event's details that say who or where a person was.
_PERSONAL_KEYS = frozenset({"email", "ip", "ip_addr", "user_agent", "handle", "name"})


def pseudonym(settings: Settings, user_id: str) -> str:
    key = settings.account_pseudonym_key or settings.auth_encryption_key
    digest = hmac.new(
        b"audit-pseudonym\0" + key.get_secret_value().encode(), str(uuid.UUID(user_id)).encode(),
        hashlib.sha256,
    ).digest()  # fmt: skip
    return str(uuid.UUID(bytes=digest[:16], version=5))


def _scrubbed(details: dict[str, Any], user_id: str, alias: str) -> dict[str, Any]:
    kept = {k: v for k, v in details.items() if k not in _PERSONAL_KEYS}
    return dict(json.loads(json.dumps(kept, default=str).replace(user_id, alias)))


async def pseudonymise(
    conn: psycopg.AsyncConnection, user_id: str, alias: str, *, email: str | None
) -> int:
    """Rewrites the user's audit events (as actor or subject, naming them in their details,
    or failed logins with their email) and seals the chain again; the rows changed. Run in the
    caller's transaction; idempotent (a second run finds nothing to change)."""
    await audit.lock_for_writing(conn)
    # The one rewrite the log's append-only trigger lets through (sql/024_account_data.sql).
    await conn.execute("SET LOCAL acs.audit_pseudonymise = 'on'")
    rows = await (
        await conn.execute(
            "SELECT id, actor_user_id::text, subject_user_id::text, details FROM audit_event"
            " WHERE actor_user_id = %(uid)s OR subject_user_id = %(uid)s"
            " OR details::text LIKE %(like)s OR (%(email)s::text IS NOT NULL"
            "   AND lower(details->>'email') = lower(%(email)s)) ORDER BY id",
            {"uid": user_id, "like": f"%{user_id}%", "email": email},
        )
    ).fetchall()
    for event_id, actor, subject, details in rows:
        own = actor == user_id or (actor is None and subject in (user_id, None))
        await conn.execute(
            "UPDATE audit_event SET actor_user_id = %s, subject_user_id = %s, details = %s,"
            " ip_addr = CASE WHEN %s THEN NULL ELSE ip_addr END,"
            " user_agent = CASE WHEN %s THEN NULL ELSE user_agent END WHERE id = %s",
            (alias if actor == user_id else actor, alias if subject == user_id else subject,
             Jsonb(_scrubbed(details or {}, user_id, alias)), own, own, event_id),
        )  # fmt: skip
    if rows:
        await audit.reseal(conn, after_id=rows[0][0] - 1)
    return len(rows)
