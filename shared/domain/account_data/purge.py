"""Deleting an account (issue 23 item 4): the request, and the purge a queued job carries out.

The request (`request_deletion`) is one transaction: the account is deactivated (logins and
refreshes refused), an `account_purge` row records who asked, the audit event is written and
the purge job is queued through the outbox. The caller then ends every session
(`Sessions.revoke_all`), so the access tokens already out stop working at once.

The purge (`run`) is a sequence of idempotent steps, each safe to run again, so a purge that
stopped half-way is simply run again (the message's next delivery, or the hourly schedule):

1. the audit log: the user's events pseudonymised (shared.domain.account_data.pseudonyms);
2. the rows: the outbox messages that name the user, then `app_user`, whose foreign keys
   cascade to everything the user owns (conversations, messages, files, contexts, feedback,
   artifacts and adapters, training jobs, clusters, voice clips, exports, sessions...);
3. the objects: the user's rows out of global skills' training datasets
   (shared.domain.account_data.datasets), then everything under users/{uid}/ (uploads, voice,
   adapter versions and their datasets) and exports/{uid}/, and unfinished multipart uploads;
4. Redis: every key that names the user, the chat memories of their conversations, the
   session, socket and one-time-token keys whose value names them, the login lockout;
5. done: the row forgets the user's id and keeps the pseudonym; `account_purged` is audited.

The inference tasks drop the user's cached adapters when step 2 commits: deleting the adapter
versions' rows notifies every task (sql/026, functions/inference/adapter_deletions.py).

Rows go before objects: once the rows are gone, work still in flight for the user (an
ingestion, a training job) fails on the missing rows instead of writing new ones, and the
objects it may have written just before are removed by step 3 (again, on a re-run).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from shared.domain.account_data import datasets, pseudonyms
from shared.domain.account_data.exports import EXPORTS_PREFIX
from shared.platform import audit, outbox
from shared.platform.audit import Actor
from shared.platform.clients import Clients
from shared.platform.errors import NotFound

log = logging.getLogger(__name__)

PURGE_QUEUE = "PurgeQueue"
# Keys whose value (not name) names the user: sessions (auth:session:{sid} -> uid), one-time
# tokens and MFA tickets (auth:{purpose}:{digest} -> uid), socket principals (ws:...), the
# owner of a running chat turn (chat:active:{request_id}).
_VALUE_PREFIXES = ("auth:*", "ws:*", "chat:active:*")
_LOGIN_LOCKOUT = "login"  # shared.domain.accounts.flows: Lockout(redis, "login", ...)
_MFA_LOCKOUT = "mfa"  # shared.domain.accounts.mfa: Lockout(redis, "mfa", ...)


@dataclass(frozen=True)
class PurgeRequest:
    id: str
    pseudonym: str
    created: bool  # False: the account was already being deleted


@dataclass(frozen=True)
class PurgeReport:
    purge_id: str
    audit_events: int
    objects: int
    redis_keys: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- the request --------------------------------------------------------------------------
async def request_deletion(
    conn: psycopg.AsyncConnection, user_id: str, *, pseudonym: str, actor: Actor, by_admin: bool
) -> PurgeRequest:
    """In the caller's transaction: deactivates the account, records the purge, audits it and
    queues the job. Asking again for an account already being deleted changes nothing."""
    found = await (
        await conn.execute("SELECT 1 FROM app_user WHERE id = %s FOR UPDATE", (user_id,))
    ).fetchone()
    if found is None:
        raise NotFound("no such user")
    await conn.execute("UPDATE app_user SET is_active = false WHERE id = %s", (user_id,))
    row = await (
        await conn.execute(
            "INSERT INTO account_purge (user_id, pseudonym, requested_by) VALUES (%s, %s, %s)"
            " ON CONFLICT (user_id) DO NOTHING RETURNING id::text",
            (user_id, pseudonym, "admin" if by_admin else "user"),
        )
    ).fetchone()
    if row is None:
        existing = await (
            await conn.execute("SELECT id::text FROM account_purge WHERE user_id = %s", (user_id,))
        ).fetchone()
        assert existing is not None
        return PurgeRequest(existing[0], pseudonym, created=False)
    purge_id = row[0]
    by = "admin" if by_admin else "user"
    await audit.record(conn, "account_deletion_requested", actor=actor, subject_user_id=user_id,
                       details={"purge_id": purge_id, "by": by})  # fmt: skip
    await queue_purge(conn, purge_id)
    return PurgeRequest(purge_id, pseudonym, created=True)


async def queue_purge(conn: psycopg.AsyncConnection, purge_id: str, *, attempt: int = 0) -> None:
    """The message names the purge, never the user: the outbox row outlives the account."""
    await outbox.enqueue(conn, queue=PURGE_QUEUE, body={"purge_id": purge_id},
                         dedup_key=f"purge:{purge_id}:{attempt}")  # fmt: skip


async def stalled(conn: psycopg.AsyncConnection, *, older_than_s: float) -> list[str]:
    """Pending purges asked for longer ago than `older_than_s` (their messages spent): the
    schedule queues them again."""
    rows = await (
        await conn.execute(
            "UPDATE account_purge SET attempts = attempts + 1 WHERE status = 'pending'"
            " AND requested_at < now() - make_interval(secs => %s * (attempts + 1))"
            " RETURNING id::text, attempts",
            (older_than_s,),
        )
    ).fetchall()
    for purge_id, attempts in rows:
        await queue_purge(conn, purge_id, attempt=attempts)
    return [row[0] for row in rows]


# --- the purge ------------------------------------------------------------------------------
async def run(clients: Clients, purge_id: str) -> PurgeReport | None:
    """Carries out a pending purge; None when it is done already (or unknown)."""
    async with clients.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT user_id::text, pseudonym::text, requested_by FROM account_purge"
                " WHERE id = %s AND status = 'pending'",
                (purge_id,),
            )
        ).fetchone()
        if row is None:
            return None
        user_id, alias, requested_by = row
        account = await (
            await conn.execute("SELECT email::text FROM app_user WHERE id = %s", (user_id,))
        ).fetchone()
        email = account[0] if account else None  # gone: a re-run after step 2
        owned = await conn.execute(
            "SELECT id::text FROM conversation WHERE user_id = %s", (user_id,)
        )
        conversations = [r[0] for r in await owned.fetchall()]
        async with conn.transaction():
            events = await pseudonyms.pseudonymise(conn, user_id, alias, email=email)
        async with conn.transaction():
            await _delete_rows(conn, user_id)
    async with clients.db.connection() as conn:
        scrubbed = await datasets.scrub_global_datasets(conn, clients.s3, clients.bucket(), user_id)
    objects = await _delete_objects(clients, user_id)
    keys = await _delete_redis_keys(clients.redis, user_id, conversations, email=email)
    async with clients.db.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE account_purge SET status = 'done', user_id = NULL, finished_at = now(),"
            " last_error = NULL WHERE id = %s",
            (purge_id,),
        )
        details = {"purge_id": purge_id, "requested_by": requested_by, "objects": objects,
                   "global_dataset_rows": scrubbed}  # fmt: skip
        await audit.record(conn, "account_purged", actor=Actor(), subject_user_id=alias,
                           details=details)  # fmt: skip
    report = PurgeReport(purge_id, events, objects, keys)
    log.info("account purged: %s", json.dumps(report.as_dict()))
    return report


async def record_failure(clients: Clients, purge_id: str, error: str) -> None:
    async with clients.db.connection() as conn:
        await conn.execute(
            "UPDATE account_purge SET last_error = %s WHERE id = %s AND status = 'pending'",
            (error[:1000], purge_id),
        )


async def _delete_rows(conn: psycopg.AsyncConnection, user_id: str) -> None:
    # Messages still to send for the user (mail, jobs): JSON with no foreign key to cascade.
    await conn.execute(
        "DELETE FROM outbox_message WHERE body::text LIKE %(like)s"
        " OR coalesce(dedup_key, '') LIKE %(like)s",
        {"like": f"%{user_id}%"},
    )
    # Global clusters (built from consenting users' events) keep sample ids of what they
    # were made of: the user's messages and events leave them, as the events leave the
    # next global run and the next skill training (the cascade below deletes them).
    await conn.execute(
        "UPDATE semantic_cluster SET"
        " sample_message_ids = array(SELECT x FROM unnest(sample_message_ids) x"
        "   WHERE x NOT IN (SELECT message_id FROM preference_event WHERE user_id = %(uid)s)),"
        " sample_event_ids = array(SELECT x FROM unnest(sample_event_ids) x"
        "   WHERE x NOT IN (SELECT id FROM preference_event WHERE user_id = %(uid)s))"
        " WHERE user_id IS NULL AND EXISTS (SELECT 1 FROM preference_event p"
        "   WHERE p.user_id = %(uid)s AND (p.id = ANY(sample_event_ids)"
        "   OR p.message_id = ANY(sample_message_ids)))",
        {"uid": user_id},
    )
    await conn.execute("DELETE FROM app_user WHERE id = %s", (user_id,))


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return [item["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])]  # fmt: skip


def _multipart(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    answer = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [(u["Key"], u["UploadId"]) for u in answer.get("Uploads", [])]


async def _delete_objects(clients: Clients, user_id: str) -> int:
    s3, bucket, deleted = clients.s3, clients.bucket(), 0
    for prefix in (f"users/{user_id}/", f"{EXPORTS_PREFIX}/{user_id}/"):
        for key, upload_id in await asyncio.to_thread(_multipart, s3, bucket, prefix):
            await asyncio.to_thread(s3.abort_multipart_upload, Bucket=bucket, Key=key,
                                    UploadId=upload_id)  # fmt: skip
        keys = await asyncio.to_thread(_keys, s3, bucket, prefix)
        for start in range(0, len(keys), 1000):  # DeleteObjects' limit
            chunk = keys[start : start + 1000]
            answer = await asyncio.to_thread(
                s3.delete_objects, Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
            )  # fmt: skip
            if answer.get("Errors"):  # retried: the message fails and comes back
                raise RuntimeError(f"{len(answer['Errors'])} objects could not be deleted")
            deleted += len(chunk)
    return deleted


async def _delete_redis_keys(
    redis: Any, user_id: str, conversations: list[str], *, email: str | None
) -> int:
    doomed: set[Any] = set()
    async for key in redis.scan_iter(match=f"*{user_id}*", count=1000):
        doomed.add(key)
    for pattern in _VALUE_PREFIXES:
        async for key in redis.scan_iter(match=pattern, count=1000):
            if await redis.type(key) in (b"string", "string"):
                value = await redis.get(key)
                if value is not None and user_id.encode() in _as_bytes(value):
                    doomed.add(key)
    doomed.update(f"chat:memory:{c}" for c in conversations)
    # Lockouts name their subject by a hash: the login's is the email, MFA's the user id.
    doomed.add(f"lockout:{_MFA_LOCKOUT}:{_subject_hash(user_id)}")
    if email:
        doomed.add(f"lockout:{_LOGIN_LOCKOUT}:{_subject_hash(email)}")
    return int(await redis.delete(*doomed)) if doomed else 0


def _subject_hash(subject: str) -> str:
    """As shared.domain.accounts.lockout.Lockout names a subject's key."""
    return hashlib.sha256(subject.lower().encode()).hexdigest()[:32]


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
