"""Deleting an account (issue 23 item 4): DELETE /v1/me (with the password, or a fresh login
for an account without one) or an admin's DELETE /v1/admin/users/{id} ends every session at
once and makes the account unusable; the purge PurgeQueue brings to the account_data function
then removes everything. The key test scans every table of the public schema generically: no
row anywhere names the deleted user (the audit log holds only the pseudonym), no object is
left under users/{uid}/ or exports/{uid}/, no Redis key names them, the other user is whole,
and a second purge changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import pyotp
import pytest

from functions.chat_socket.principals import SocketPrincipals
from shared.domain.account_data.pseudonyms import pseudonym
from shared.domain.accounts.onetime import OneTimeTokens
from shared.platform import audit
from shared.platform.auth.sessions import Sessions
from shared.platform.auth.tokens import Principal
from tests.integration.accountkit import deliver, pending_message, post_events, user_with_data
from tests.integration.adapterkit import job_row
from tests.integration.authkit import PASSWORD, bearer, sign_up
from tests.integration.configkit import admin
from tests.integration.prefkit import seeded_feedback
from tests.integration.ragkit import chunk_row

pytestmark = pytest.mark.integration

# Column types a user id can hide in, as text: ids, text, JSON, arrays (of ids), emails.
_SCANNED = ("uuid", "text", "jsonb", "json", "ARRAY", "character varying", "citext")


async def _columns(services) -> list[tuple[str, str]]:
    async with services.db.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
                "  AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'"
                " WHERE c.table_schema = 'public'"
                " AND (c.data_type = ANY(%s) OR c.udt_name = ANY(%s))",
                (list(_SCANNED), list(_SCANNED)),
            )
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


async def _rows_naming(services, needle: str) -> dict[str, int]:
    """{table.column: rows whose value, as text, contains `needle`} over the public schema."""
    found: dict[str, int] = {}
    async with services.db.connection() as conn:
        for table, column in await _columns(services):
            row = await (
                await conn.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',  # noqa: S608
                    (f"%{needle}%",),
                )
            ).fetchone()
            if row and row[0]:
                found[f"{table}.{column}"] = int(row[0])
    return found


async def _redis_naming(redis, needle: str) -> list[str]:
    """Keys whose name, or whose string value, contains `needle`."""
    named = []
    async for key in redis.scan_iter(count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if needle in name:
            named.append(name)
        elif await redis.type(key) in (b"string", "string"):
            value = await redis.get(key)
            if value is not None and needle.encode() in (
                value if isinstance(value, bytes) else str(value).encode()
            ):
                named.append(name)
    return named


def _objects(services, prefix: str) -> list[str]:
    listed = services.s3.list_objects_v2(Bucket=services.bucket(), Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def _hashed(subject: str) -> str:
    """As shared.domain.accounts.lockout names a subject's key."""
    return hashlib.sha256(subject.lower().encode()).hexdigest()[:32]


async def _more_data(api, services, user: dict) -> None:
    """Rows in the tables user_with_data leaves empty, and the Redis keys the code writes per
    user (sessions, rate limits, one-time tokens, sockets, chat memory, caps, idempotency)."""
    uid, headers = user["id"], user["headers"]
    await seeded_feedback(uid, signal="never", notes="no emoji")  # a personalization rule
    attached = await api.post(f"/v1/contexts/{user['context_id']}/files", headers=headers,
                              json={"file_ids": [user["file_id"]]})  # fmt: skip
    assert attached.status_code in (200, 201, 202), attached.text
    await chunk_row(user["context_id"], user["file_id"], f"chunk {user['marker']}")
    await job_row(uid, user["adapter_id"], status="succeeded", loss=0.5)
    schema = {"kind": "tool.spec", "name": "rights.probe_v1", "input_schema": {"type": "object"},
              "output_schema": {"type": "object"}}  # fmt: skip
    made = await api.post("/v1/artifacts", headers=headers,
                          json={"name": f"p-{user['marker'][:8]}", "schema": schema})  # fmt: skip
    assert made.status_code == 201, made.text
    patch = {"artifact_id": made.json()["data"]["id"], "justification": "probe",
             "patch": [{"op": "add", "path": "/description", "value": "probed"}]}  # fmt: skip
    proposed = await api.post("/v1/config/patches", headers=headers, json=patch)
    assert proposed.status_code == 201, proposed.text
    settings_put = await api.patch("/v1/me/settings", headers=headers, json={"locale": "de"})
    assert settings_put.status_code == 200, settings_put.text
    async with services.db.connection() as conn:
        await conn.execute(
            "INSERT INTO user_auth_provider (user_id, provider, provider_uid)"
            " VALUES (%s, 'probe', %s)", (uid, f"sub-{user['marker']}"),
        )  # fmt: skip
        event = await (
            await conn.execute(
                "SELECT id, message_id FROM preference_event WHERE user_id = %s LIMIT 1", (uid,)
            )
        ).fetchone()
        cluster = await (
            await conn.execute(
                "INSERT INTO semantic_cluster (user_id, scope, size, label, sample_event_ids,"
                " sample_message_ids) VALUES (%s, 'user', 1, 'mine', %s, %s) RETURNING id",
                (uid, [event[0]], [event[1]]),
            )
        ).fetchone()
        await conn.execute(
            "INSERT INTO cluster_event (event_id, scope, cluster_id, similarity)"
            " VALUES (%s, 'user', %s, 0.9)", (event[0], cluster[0]),
        )  # fmt: skip
        # A global cluster made of consenting users' events, this user's among them.
        await conn.execute(
            "INSERT INTO semantic_cluster (user_id, scope, size, label, sample_event_ids,"
            " sample_message_ids) VALUES (NULL, 'global', 1, %s, %s, %s)",
            (f"global-{user['marker']}", [event[0]], [event[1]]),
        )
    exported = await api.post("/v1/me/export", headers=headers)  # rate:export:{uid} in Redis
    assert exported.status_code == 202, exported.text
    export_id = exported.json()["data"]["export"]["id"]
    body = await pending_message(services, "ExportQueue", "export_id", export_id)
    assert await deliver(services, "ExportQueue", body) == []  # exports/{uid}/{id}.zip
    redis, session = services.redis, str(uuid.uuid4())
    await redis.set("lockout:mfa:" + _hashed(uid), "1", ex=600)  # a wrong MFA code's count
    await OneTimeTokens(redis).issue("verify_email", uid, ttl_s=600)
    principal = Principal(uid, "user", session)
    await SocketPrincipals(redis).remember(f"conn-{user['marker']}", principal, ttl_s=600)
    await redis.set(f"chat:memory:{user['conversation_id']}", json.dumps({"turns": []}), ex=600)
    await redis.zadd(f"cap:chat:{uid}", {"lease": 1})
    await redis.set(f"idem:chat:{uid}:{user['marker']}", "{}", ex=600)


async def _global_skill_dataset(services, users: list[dict]) -> str:
    """A global skill trained on these (consenting) users' feedback: its job's dataset and
    manifest in the store as the train function writes them (functions/train/dataset.py);
    the dataset's prefix."""
    async with services.db.connection() as conn:
        cluster = await (
            await conn.execute(
                "INSERT INTO semantic_cluster (user_id, scope, size, label)"
                " VALUES (NULL, 'global', 2, 'skill probe') RETURNING id::text"
            )
        ).fetchone()
        adapter = await (
            await conn.execute(
                # Disabled: a global adapter is offered to every user's router, and this one
                # has no weights to serve (the chats of later tests must not pick it).
                "INSERT INTO artifact (owner_user_id, type, name, schema, visibility)"
                " VALUES (NULL, 'adapter.lora', %s, '{\"status\": \"disabled\"}', 'global')"
                " RETURNING id::text",
                (f"skill-{uuid.uuid4().hex[:8]}",),
            )
        ).fetchone()
        job_id = str(uuid.uuid4())
        prefix = f"shared/adapters/{adapter[0]}/train_jobs/{job_id}/"
        await conn.execute(
            "INSERT INTO training_job (id, adapter_id, user_id, kind, cluster_ids, status,"
            " dataset_path) VALUES (%s, %s, NULL, 'skill', %s, 'succeeded', %s)",
            (job_id, adapter[0], [cluster[0]], prefix + "dataset.jsonl"),
        )
        sources, lines = [], []
        for user in users:
            event = await (
                await conn.execute(
                    "SELECT id, message_id::text, conversation_id::text FROM preference_event"
                    " WHERE user_id = %s LIMIT 1", (user["id"],),
                )
            ).fetchone()  # fmt: skip
            sources.append({"event_id": event[0], "user_id": user["id"],
                            "conversation_id": event[2], "message_id": event[1]})  # fmt: skip
            line = {"event_id": event[0], "prompt": user["marker"], "target": "t",
                    "conversation_id": event[2]}  # fmt: skip
            lines.append(json.dumps(line) + "\n")
    manifest = {"format": 1, "job_id": job_id, "user_id": None, "rows": len(lines),
                "sources": sources, "skipped": []}  # fmt: skip
    bucket = services.bucket()
    services.s3.put_object(Bucket=bucket, Key=prefix + "dataset.jsonl",
                           Body="".join(lines).encode())  # fmt: skip
    services.s3.put_object(Bucket=bucket, Key=prefix + "manifest.json",
                           Body=json.dumps(manifest).encode())  # fmt: skip
    return prefix


async def _signed_in_again(api, email: str) -> int:
    return (
        await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).status_code


async def _admin_list(api, admin_headers: dict, email: str) -> list[dict]:
    listed = await api.get("/v1/admin/users", headers=admin_headers,
                           params={"email_contains": email})  # fmt: skip
    assert listed.status_code == 200, listed.text
    return listed.json()["data"]["items"]


async def _purge_id(services, uid: str) -> str:
    async with services.db.connection() as conn:
        row = await (
            await conn.execute("SELECT id::text FROM account_purge WHERE user_id = %s", (uid,))
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_deleted_account_leaves_nothing_behind(api, services):
    victim = await user_with_data(api, services)
    other = await user_with_data(api, services)
    try:
        await _deleted_account_leaves_nothing(api, services, victim, other)
    finally:
        await _drop_global_probes(services, [victim, other])


async def _drop_global_probes(services, users: list[dict]) -> None:
    """The global rows the test made are no one's, so no purge removes them; left behind, a
    global cluster without a centroid or a skill without weights would reach the global
    clustering runs and every user's router in later tests."""
    labels = [f"global-{user['marker']}" for user in users] + ["skill probe"]
    async with services.db.connection() as conn:
        await conn.execute(
            "DELETE FROM artifact WHERE owner_user_id IS NULL AND name LIKE 'skill-%%'"
            " AND schema->>'status' = 'disabled' AND type = 'adapter.lora'"
            " AND id IN (SELECT adapter_id FROM training_job WHERE kind = 'skill'"
            " AND dataset_path LIKE 'shared/adapters/%%')"
        )
        await conn.execute(
            "DELETE FROM semantic_cluster WHERE user_id IS NULL AND label = ANY(%s)", (labels,)
        )


async def _deleted_account_leaves_nothing(api, services, victim: dict, other: dict) -> None:
    uid, email = victim["id"], victim["email"]
    await _more_data(api, services, victim)
    await _more_data(api, services, other)
    skill = await _global_skill_dataset(services, [victim, other])
    # A failed login: its audit event names the user by email only; the lockout key hashes it.
    wrong = await api.post("/v1/auth/login", json={"email": email, "password": "wrong guess 1"})
    assert wrong.status_code == 401
    login = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    refresh_token = login.json()["data"]["refresh_token"]
    assert await _rows_naming(services, uid)  # the scan finds what is there
    other_before = await _rows_naming(services, other["id"])
    other_objects = sorted(_objects(services, f"users/{other['id']}/"))
    assert other_objects

    # A wrong password is refused and changes nothing; a missing one is invalid input.
    refused = await api.request("DELETE", "/v1/me", headers=victim["headers"],
                                json={"password": "not the password"})  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "invalid_password"
    missing = await api.request("DELETE", "/v1/me", headers=victim["headers"], json={})
    assert missing.status_code == 400
    assert (await api.get("/v1/me", headers=victim["headers"])).status_code == 200
    assert await _signed_in_again(api, email) == 200
    async with services.db.connection() as conn:
        held = await (await conn.execute("SELECT count(*) FROM account_purge WHERE user_id = %s",
                                         (uid,))).fetchone()  # fmt: skip
    assert held is not None and held[0] == 0

    deleted = await api.request("DELETE", "/v1/me", headers=victim["headers"],
                                json={"password": PASSWORD})  # fmt: skip
    assert deleted.status_code == 202, deleted.text
    assert deleted.json()["data"] == {"status": "deleting"}
    cleared = deleted.headers.get_list("set-cookie")
    assert any(c.startswith('acs_access=""') or "acs_access=;" in c for c in cleared), cleared
    # At once, before any purge: the tokens already out are refused, and so is a login.
    assert (await api.get("/v1/me", headers=victim["headers"])).status_code == 401
    again = await api.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert again.status_code == 401
    assert await _signed_in_again(api, email) == 401

    purge_id = await _purge_id(services, uid)
    body = await pending_message(services, "PurgeQueue", "purge_id", purge_id)
    assert body == {"purge_id": purge_id}  # the message never names the user
    assert await deliver(services, "PurgeQueue", body) == []

    assert await _rows_naming(services, uid) == {}
    assert await _rows_naming(services, email) == {}
    assert _objects(services, f"users/{uid}/") == []
    assert _objects(services, f"exports/{uid}/") == []
    assert await _redis_naming(services.redis, uid) == []
    for lockout in ("login:" + _hashed(email), "mfa:" + _hashed(uid)):
        assert not await services.redis.exists("lockout:" + lockout)
    # The audit log keeps the user's events, under the pseudonym only, and still verifies.
    alias = pseudonym(services.settings, uid)
    async with services.db.connection() as conn:
        events = await (
            await conn.execute(
                "SELECT event, actor_user_id::text, ip_addr FROM audit_event"
                " WHERE subject_user_id = %s ORDER BY id", (alias,),
            )
        ).fetchall()  # fmt: skip
    names = [e[0] for e in events]
    for expected in ("signup", "login", "account_deletion_requested", "account_purged"):
        assert expected in names, names
    assert all(e[2] is None for e in events if e[1] == alias)  # its own requests: no address
    assert (await audit.verify_chain(services.db)).ok
    # A global skill's dataset keeps the other user's rows only (the weights are retrained
    # without the deleted user's events at the skill's next training).
    bucket = services.bucket()
    dataset = services.s3.get_object(Bucket=bucket, Key=skill + "dataset.jsonl")["Body"].read()
    manifest = services.s3.get_object(Bucket=bucket, Key=skill + "manifest.json")["Body"].read()
    for stored in (dataset, manifest):
        assert uid.encode() not in stored and victim["marker"].encode() not in stored
    assert other["marker"].encode() in dataset and other["id"].encode() in manifest
    # The other user is whole.
    assert await _rows_naming(services, other["id"]) == other_before
    assert sorted(_objects(services, f"users/{other['id']}/")) == other_objects
    assert (await api.get("/v1/conversations", headers=other["headers"])).status_code == 200
    assert await _redis_naming(services.redis, other["id"])

    # A second purge (a redelivery) finds nothing to do and changes nothing.
    async with services.db.connection() as conn:
        count = await (await conn.execute("SELECT count(*) FROM audit_event")).fetchone()
    assert await deliver(services, "PurgeQueue", body) == []
    async with services.db.connection() as conn:
        assert await (await conn.execute("SELECT count(*) FROM audit_event")).fetchone() == count


async def test_an_admin_deletes_a_user_and_it_is_audited(api, services, settings):
    admin_headers = await admin(api, settings)
    me = (await api.get("/v1/me", headers=admin_headers)).json()["data"]["id"]
    target = await user_with_data(api, services)
    own = await api.delete(f"/v1/admin/users/{me}", headers=admin_headers)
    assert own.status_code == 409 and own.json()["error"]["code"] == "cannot_delete_self"
    unknown = await api.delete(f"/v1/admin/users/{uuid.uuid4()}", headers=admin_headers)
    assert unknown.status_code == 404
    as_user = await api.delete(f"/v1/admin/users/{me}", headers=target["headers"])
    assert as_user.status_code == 403

    done = await api.delete(f"/v1/admin/users/{target['id']}", headers=admin_headers)
    assert done.status_code == 202 and done.json()["data"] == {"status": "deleting"}
    assert (await api.get("/v1/me", headers=target["headers"])).status_code == 401
    twice = await api.delete(f"/v1/admin/users/{target['id']}", headers=admin_headers)
    assert twice.status_code == 202  # already on its way: nothing more happens
    revive = await api.patch(f"/v1/admin/users/{target['id']}", json={"is_active": True},
                             headers=admin_headers)  # fmt: skip
    assert revive.status_code == 409  # an account being deleted cannot be enabled again
    [listed] = await _admin_list(api, admin_headers, target["email"])
    assert (listed["status"], listed["is_active"]) == ("deleting", False)
    assert listed["deletion_requested_at"] is not None  # "disabled" would offer re-enabling
    purge_id = await _purge_id(services, target["id"])
    async with services.db.connection() as conn:
        queued = await (await conn.execute(
            "SELECT count(*) FROM outbox_message WHERE queue = 'PurgeQueue'"
            " AND body->>'purge_id' = %s",
            (purge_id,))).fetchone()  # fmt: skip
        requested = await (await conn.execute(
            "SELECT actor_user_id::text, details FROM audit_event"
            " WHERE event = 'account_deletion_requested' AND subject_user_id = %s",
            (target["id"],))).fetchall()  # fmt: skip
    assert queued == (1,)
    assert requested == [(me, {"purge_id": purge_id, "by": "admin"})]

    body = await pending_message(services, "PurgeQueue", "purge_id", purge_id)
    assert await deliver(services, "PurgeQueue", body) == []
    assert await _rows_naming(services, target["id"]) == {}
    assert await _admin_list(api, admin_headers, target["email"]) == []  # the row is gone
    alias = pseudonym(services.settings, target["id"])
    async with services.db.connection() as conn:
        kept = await (await conn.execute(
            "SELECT actor_user_id::text FROM audit_event"
            " WHERE event = 'account_deletion_requested' AND subject_user_id = %s",
            (alias,))).fetchall()  # fmt: skip
    assert kept == [(me,)]  # the admin's own id stays: it is the admin's record


async def test_an_account_without_a_password_needs_a_fresh_login(api, services):
    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
                (f"oidc-{uuid.uuid4().hex[:10]}@example.test",),
            )
        ).fetchone()
    uid = row[0]
    sessions = Sessions(services.settings, services.db, services.redis)
    pair = await sessions.open(uid, "user", user_agent="probe", ip=None)
    async with services.db.connection() as conn:  # signed in an hour ago
        await conn.execute("UPDATE auth_session SET created_at = now() - interval '1 hour'"
                           " WHERE id = %s", (pair.principal.session_id,))  # fmt: skip
    stale = await api.request("DELETE", "/v1/me", headers=bearer(pair.access_token), json={})
    assert stale.status_code == 403 and stale.json()["error"]["code"] == "reauth_required"
    fresh = await sessions.open(uid, "user", user_agent="probe", ip=None)
    deleted = await api.request("DELETE", "/v1/me", headers=bearer(fresh.access_token), json={})
    assert deleted.status_code == 202, deleted.text
    for pair_ in (pair, fresh):
        assert (await api.get("/v1/me", headers=bearer(pair_.access_token))).status_code == 401


async def test_with_mfa_on_the_code_is_needed_too(api):
    signed = await sign_up(api)
    headers = bearer(signed["access_token"])
    setup = (await api.post("/v1/auth/mfa/enable", headers=headers)).json()["data"]
    confirmed = await api.post("/v1/auth/mfa/verify", headers=headers,
                               json={"code": pyotp.TOTP(setup["secret"]).now()})  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    recovery = confirmed.json()["data"]["recovery_codes"][0]
    no_code = await api.request("DELETE", "/v1/me", headers=headers, json={"password": PASSWORD})
    assert no_code.status_code == 400
    wrong = await api.request("DELETE", "/v1/me", headers=headers,
                              json={"password": PASSWORD, "code": "000000"})  # fmt: skip
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_code"
    assert (await api.get("/v1/me", headers=headers)).status_code == 200
    done = await api.request("DELETE", "/v1/me", headers=headers,
                             json={"password": PASSWORD, "code": recovery})  # fmt: skip
    assert done.status_code == 202, done.text
    assert (await api.get("/v1/me", headers=headers)).status_code == 401


async def test_a_stalled_purge_is_queued_again_by_the_schedule(api, services, settings):
    admin_headers = await admin(api, settings)
    target = await sign_up(api)
    done = await api.delete(f"/v1/admin/users/{target['user']['id']}", headers=admin_headers)
    assert done.status_code == 202
    purge_id = await _purge_id(services, target["user"]["id"])
    async with services.db.connection() as conn:  # its message spent long ago, never done
        await conn.execute("UPDATE account_purge SET requested_at = now() - interval '3 hours'"
                           " WHERE id = %s", (purge_id,))  # fmt: skip
    swept = await post_events(services, {"source": "aws.events", "detail-type": "Scheduled Event"})
    assert swept["data"]["resumed_purges"] >= 1
    async with services.db.connection() as conn:
        sent = await (await conn.execute(
            "SELECT count(*) FROM outbox_message WHERE queue = 'PurgeQueue'"
            " AND body->>'purge_id' = %s", (purge_id,))).fetchone()  # fmt: skip
    assert sent == (2,)  # the first message and the resumed one
    body = {"purge_id": purge_id}
    assert await deliver(services, "PurgeQueue", body) == []
    assert await _rows_naming(services, target["user"]["id"]) == {}
    await post_events(services, {"source": "aws.events", "detail-type": "Scheduled Event"})
    async with services.db.connection() as conn:
        status = await (
            await conn.execute(
                "SELECT status, user_id FROM account_purge WHERE id = %s", (purge_id,)
            )
        ).fetchone()
        resent = await (await conn.execute(
            "SELECT count(*) FROM outbox_message WHERE queue = 'PurgeQueue'"
            " AND body->>'purge_id' = %s", (purge_id,))).fetchone()  # fmt: skip
    assert status == ("done", None)
    assert resent == (2,)  # a purge that is done is never queued again


async def test_the_dispatcher_carries_a_deletion_and_an_export_through(api, services, workers):
    """The local stack's own path: the outbox relay sends the messages, the dispatcher
    delivers PurgeQueue and ExportQueue to the account_data function on the internal host."""
    exporter = await sign_up(api)
    queued = await api.post("/v1/me/export", headers=bearer(exporter["access_token"]))
    assert queued.status_code == 202
    export_id = queued.json()["data"]["export"]["id"]
    doomed = await sign_up(api)
    deleted = await api.request("DELETE", "/v1/me", headers=bearer(doomed["access_token"]),
                                json={"password": PASSWORD})  # fmt: skip
    assert deleted.status_code == 202
    purge_id = await _purge_id(services, doomed["user"]["id"])
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        async with services.db.connection() as conn:
            states = await (
                await conn.execute(
                    "SELECT (SELECT status FROM account_purge WHERE id = %s),"
                    " (SELECT status FROM account_export WHERE id = %s)", (purge_id, export_id),
                )
            ).fetchone()  # fmt: skip
        if states == ("done", "ready"):
            break
        assert asyncio.get_running_loop().time() < deadline, states
        await asyncio.sleep(0.5)
    assert await _rows_naming(services, doomed["user"]["id"]) == {}
