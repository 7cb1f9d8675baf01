"""Scheduling training jobs from feedback, and the job contract the train function drives
(issue 18, item 3), on the real stack: the threshold, one job per user and the cooldown under
concurrent feedback, paused learning, retries with back-off, deleted and reset events, the
persona's weights against its instructions, and the re-drive of lost and crashed jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import pytest
from psycopg.types.json import Jsonb

from infra.dispatcher.redrive import redrivers
from infra.gateway.app import internal_app
from shared.domain.chat import sources
from shared.domain.preferences import feedback, jobs, persona
from shared.domain.preferences.schedule import TRAIN_QUEUE, TrainingPolicy
from shared.services import Services
from tests.integration.conftest import gateway_client
from tests.integration.prefkit import (
    answered,
    counts,
    fetch_all,
    fetch_one,
    prefs_settings,
    signed_user,
)

pytestmark = pytest.mark.integration
THRESHOLD, COOLDOWN_S = 3, 3600


@pytest.fixture(scope="module")
async def prefs(settings, service, migrated):
    made = Services.from_settings(prefs_settings(
        settings, service, training_threshold_events=THRESHOLD, training_cooldown_s=COOLDOWN_S,
        training_tier_delay_s={"free": 0},
    ))  # fmt: skip
    yield made
    await made.aclose()


@pytest.fixture
async def api(prefs):
    async with gateway_client(prefs.settings, prefs) as client:
        yield client


def _policy(prefs) -> TrainingPolicy:
    return TrainingPolicy.from_settings(prefs.settings)


async def _feedback(api, prefs, user_id, headers, n: int, **extra) -> list[dict]:
    """`n` feedbacks on `n` new answers, sent concurrently."""
    targets = []
    for _ in range(n):
        async with prefs.db.connection() as conn:
            conversation_id, _, message_id = await answered(conn, user_id)
        targets.append({"conversation_id": conversation_id, "message_id": message_id,
                        "explicit_signal": "like", **extra})  # fmt: skip
    sent = await asyncio.gather(
        *(api.post("/v1/preferences", headers=headers, json=t) for t in targets)
    )
    assert all(s.status_code == 201 for s in sent), [s.text for s in sent]
    return [s.json()["data"] for s in sent]


async def _jobs(prefs, user_id: str):
    return await fetch_all(
        prefs, "SELECT id::text, status, meta, preference_event_ids, finished_at"
        " FROM training_job WHERE user_id = %s ORDER BY created_at", user_id,
    )  # fmt: skip


async def _messages(prefs, job_id: str):
    return await fetch_all(
        prefs, "SELECT body, dedup_key, available_at - created_at, available_at, sent_at"
        " FROM outbox_message WHERE queue = %s AND body->>'job_id' = %s ORDER BY id",
        TRAIN_QUEUE, job_id,
    )  # fmt: skip


async def _claim(prefs, job_id: str) -> jobs.Job | None:
    async with prefs.db.connection() as conn, conn.transaction():
        return await jobs.claim(conn, job_id)


async def test_the_threshold_queues_one_job_and_its_message_in_one_transaction(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    first = [(await _feedback(api, prefs, user_id, headers, 1))[0] for _ in range(THRESHOLD - 1)]
    assert [f["training"]["outcome"] for f in first] == ["below_threshold"] * 2
    assert await _jobs(prefs, user_id) == []
    (crossing,) = await _feedback(api, prefs, user_id, headers, 1)
    assert crossing["training"]["outcome"] == "queued"
    ((job_id, status, meta, event_ids, _),) = await _jobs(prefs, user_id)
    assert crossing["training"]["job_id"] == job_id and status == "queued"
    ids = {f["preference"]["id"] for f in [*first, crossing]}
    assert set(event_ids) == ids
    assert (meta["attempt"], meta["max_attempts"], meta["step_budget"]) == (1, 3, 64)
    assert (meta["priority"], meta["tier"], meta["new_events"]) == (1, "free", 3)
    ((body, key, delay, _, sent_at),) = await _messages(prefs, job_id)
    assert body == {"job_id": job_id} and key == f"train:{job_id}:1"
    assert delay == dt.timedelta(0) and sent_at is not None  # flushed after the commit
    # The message is on the session's TrainQueue.
    url = await prefs.queues.url(TRAIN_QUEUE)
    bodies = []
    for _ in range(5):
        got = await asyncio.to_thread(prefs.sqs.receive_message, QueueUrl=url,
                                      MaxNumberOfMessages=10, WaitTimeSeconds=1)  # fmt: skip
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
        if {"job_id": job_id} in bodies:
            break
    assert {"job_id": job_id} in bodies
    # Feedback while it waits to start joins it.
    (joined,) = await _feedback(api, prefs, user_id, headers, 1)
    assert joined["training"] == {**joined["training"], "outcome": "joined", "job_id": job_id}
    assert (joined["preference"]["job_id"], joined["preference"]["job_status"]) == (
        job_id, "queued")  # fmt: skip
    assert len(await _jobs(prefs, user_id)) == 1 and len(await _messages(prefs, job_id)) == 1


async def test_one_job_per_user_and_the_cooldown_hold_under_concurrent_feedback(
    api, prefs
) -> None:  # fmt: skip
    user_id, headers = await signed_user(api)
    burst = await _feedback(api, prefs, user_id, headers, 8)
    ((job_id, status, _, event_ids, _),) = await _jobs(prefs, user_id)
    assert status == "queued" and len(await _messages(prefs, job_id)) == 1
    assert sorted(f["training"]["outcome"] for f in burst).count("queued") == 1
    assert sorted(f["training"]["outcome"] for f in burst) == (
        ["below_threshold"] * (THRESHOLD - 1) + ["joined"] * (8 - THRESHOLD) + ["queued"]
    )
    taken = await fetch_all(prefs, "SELECT DISTINCT job_id::text FROM preference_event"
                            " WHERE user_id = %s", user_id)  # fmt: skip
    assert len(event_ids) == 8 and taken == [(job_id,)]
    # The train function runs it.
    claimed = await _claim(prefs, job_id)
    assert claimed is not None and len(claimed.preference_event_ids) == 8
    assert await _claim(prefs, job_id) is None  # a second delivery does nothing
    async with prefs.db.connection() as conn, conn.transaction():
        assert await jobs.heartbeat(conn, job_id, {"step": 3, "loss": 1.5})
    # Feedback while it runs waits for it.
    during = await _feedback(api, prefs, user_id, headers, THRESHOLD)
    assert {f["training"]["outcome"] for f in during} == {"running"}
    async with prefs.db.connection() as conn, conn.transaction():
        assert await jobs.succeed(conn, job_id, policy=_policy(prefs), new_version=None,
                                  loss=1.2, status="rejected")  # fmt: skip
    # Its end found enough new events: the next job is queued now, held until the cooldown
    # after the last one ends; more concurrent feedback joins it, never a second job.
    more = await _feedback(api, prefs, user_id, headers, 6)
    rows = await _jobs(prefs, user_id)
    assert [r[1] for r in rows] == ["rejected", "queued"]
    assert {f["training"]["outcome"] for f in more} == {"joined"}
    first_end = rows[0][4]
    second_id, _, second_meta, second_events, _ = rows[1]
    ((_, key, _, available_at, sent_at),) = await _messages(prefs, second_id)
    assert key == f"train:{second_id}:1" and sent_at is None  # still held in the outbox
    assert available_at >= first_end + dt.timedelta(seconds=COOLDOWN_S)
    # A job trains on all the user's trainable events; the new ones are those it took.
    assert second_meta["trigger"] == "job_ended" and len(second_events) == 8 + THRESHOLD + 6
    taken = await fetch_one(prefs, "SELECT count(*) FROM preference_event WHERE job_id = %s",
                            second_id)  # fmt: skip
    assert taken == (THRESHOLD + 6,)
    active = await fetch_one(prefs, "SELECT count(*) FROM training_job WHERE user_id = %s"
                             " AND status IN ('queued', 'running')", user_id)  # fmt: skip
    assert active == (1,)


async def test_paused_learning_queues_nothing_and_resuming_checks_at_once(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    await api.patch("/v1/me/personalization", headers=headers, json={"learning_paused": True})
    sent = await _feedback(api, prefs, user_id, headers, THRESHOLD + 2)
    assert {f["training"]["outcome"] for f in sent} == {"paused"}
    async with prefs.db.connection() as conn:
        seen = await counts(conn, user_id)
    assert (seen["events"], seen["jobs"], seen["messages"]) == (THRESHOLD + 2, 0, 0)
    resumed = await api.patch("/v1/me/personalization", headers=headers,
                              json={"learning_paused": False})  # fmt: skip
    active = resumed.json()["data"]["training"]["active_job"]
    assert active["status"] == "queued" and active["num_events"] == THRESHOLD + 2
    # Pausing again cancels the job that has not started, and gives its events back.
    await api.patch("/v1/me/personalization", headers=headers, json={"learning_paused": True})
    ((_, status, meta, _, _),) = await _jobs(prefs, user_id)
    assert (status, meta["reason"]) == ("cancelled", "learning paused")
    view = (await api.get("/v1/me/personalization", headers=headers)).json()["data"]
    assert view["training"]["new_events"] == THRESHOLD + 2


async def test_transient_failures_retry_with_back_off_then_fail_keeping_every_event(
    api, prefs
) -> None:  # fmt: skip
    user_id, headers = await signed_user(api)
    await _feedback(api, prefs, user_id, headers, THRESHOLD)
    ((job_id, *_),) = await _jobs(prefs, user_id)
    policy = _policy(prefs)
    outcomes = []
    for _ in range(policy.max_attempts):
        assert await _claim(prefs, job_id) is not None
        async with prefs.db.connection() as conn, conn.transaction():
            outcomes.append(await jobs.fail(conn, job_id, "inference service gone",
                                            transient=True, policy=policy))  # fmt: skip
    assert outcomes == ["queued", "queued", "failed"]
    messages = await _messages(prefs, job_id)
    assert [(m[1], m[2]) for m in messages] == [
        (f"train:{job_id}:1", dt.timedelta(0)),
        (f"train:{job_id}:2", dt.timedelta(seconds=60)),
        (f"train:{job_id}:3", dt.timedelta(seconds=120)),
    ]
    ((_, status, meta, _, finished_at),) = await _jobs(prefs, user_id)
    assert status == "failed" and finished_at is not None
    assert meta["reason"] == "inference service gone" and len(meta["errors"]) == 3
    kept = await fetch_one(prefs, "SELECT count(*), count(job_id) FROM preference_event"
                           " WHERE user_id = %s", user_id)  # fmt: skip
    assert kept == (THRESHOLD, 0)  # every event kept, and new again
    view = (await api.get("/v1/me/personalization", headers=headers)).json()["data"]
    assert view["training"]["last_job"]["status"] == "failed"
    assert view["training"]["last_job"]["reason"] == "inference service gone"
    # A permanent failure fails at once.
    (again,) = await _feedback(api, prefs, user_id, headers, 1)
    assert again["training"]["outcome"] == "queued"
    assert await _claim(prefs, again["training"]["job_id"]) is not None
    async with prefs.db.connection() as conn, conn.transaction():
        done = await jobs.fail(conn, again["training"]["job_id"], "bad data", transient=False,
                               policy=policy)  # fmt: skip
    assert done == "failed"


async def test_deleted_and_filtered_events_are_in_no_later_job(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    sent = await _feedback(api, prefs, user_id, headers, THRESHOLD + 1)
    job_id = next(f["training"]["job_id"] for f in sent if f["training"]["job_id"])
    gone = sent[0]["preference"]["id"]
    assert (await api.delete(f"/v1/preferences/{gone}", headers=headers)).status_code == 200
    ((_, _, _, waiting, _),) = await _jobs(prefs, user_id)
    assert gone not in waiting
    async with prefs.db.connection() as conn:
        conversation_id, _, message_id = await answered(
            conn, user_id, answer="Mail me at a.person@example.org"
        )
    filtered = await api.post("/v1/preferences", headers=headers, json={
        "conversation_id": conversation_id, "message_id": message_id, "explicit_signal": "like",
    })  # fmt: skip
    reason = filtered.json()["data"]["preference"]["filtered_reason"]
    assert reason == "message: personal data (email)"
    claimed = await _claim(prefs, job_id)
    assert claimed is not None
    expected = {f["preference"]["id"] for f in sent[1:]}
    assert set(claimed.preference_event_ids) == expected
    async with prefs.db.connection() as conn:
        events = await jobs.events_of(conn, claimed)
    assert {e.id for e in events} == expected and all(e.answer for e in events)


async def test_weights_learn_instructions_and_reset_returns_to_the_base(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    sent = await _feedback(api, prefs, user_id, headers, THRESHOLD, explicit_signal="always",
                           notes="be brief")  # fmt: skip
    job_id = next(f["training"]["job_id"] for f in sent if f["training"]["job_id"])
    persona_id = sent[0]["adapter_id"]
    claimed = await _claim(prefs, job_id)
    assert claimed is not None and not claimed.base_has_weights and claimed.base_version == 1
    assert len(claimed.instructions) == THRESHOLD
    learned, newer = claimed.instructions[0]["id"], claimed.instructions[1]["id"]
    # What publishing a trained version does to the artifact (adapters.registry.publish).
    weights = {**persona.base_schema(2), "mode": "local", "fs_dir": "users/x/adapters/y/v0002/",
               "checksum": "sha256:" + "0" * 64, "rank": 8, "alpha": 16}  # fmt: skip
    async with prefs.db.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO artifact_version (artifact_id, version, schema, created_by)"
            " VALUES (%s, 2, %s, 'system')",
            (persona_id, Jsonb(weights)),
        )
        await conn.execute("UPDATE artifact SET version = 2, schema = %s WHERE id = %s",
                           (Jsonb(weights), persona_id))  # fmt: skip
        # The user edits one instruction while the job runs: that text is newer than the job.
        await persona.edit_instruction(conn, user_id, newer, kind=None, text="be very brief")
        assert await jobs.succeed(conn, job_id, policy=_policy(prefs), new_version=2, loss=0.9,
                                  learned_instruction_ids=[learned, newer])  # fmt: skip
    view = (await api.get("/v1/me/personalization", headers=headers)).json()["data"]
    assert view["has_weights"] and view["adapter_version"] == 2
    how = {i["id"]: (i["applied_as"], i["learned_version"]) for i in view["instructions"]}
    assert how[learned] == ("weights", 2) and how[newer] == ("prompt", None)
    async with prefs.db.connection() as conn:
        (shaped,) = [c for c in await sources.adapter_candidates(conn, user_id)
                     if c.id == persona_id]  # fmt: skip
    assert shaped.mode == "hybrid" and shaped.version == 2
    assert "be very brief" in (shaped.pending_instructions or "")
    assert shaped.prompt_instructions is not None and shaped.pending_instructions is not None
    assert shaped.prompt_instructions.count("\n") == THRESHOLD
    assert shaped.pending_instructions.count("\n") == THRESHOLD - 1  # all but the learned one

    reset = await api.post("/v1/me/personalization/reset", headers=headers, json={})
    view = reset.json()["data"]
    assert reset.status_code == 200 and not view["has_weights"] and view["adapter_version"] == 3
    assert {(i["applied_as"], i["learned_version"]) for i in view["instructions"]} == {
        ("prompt", None)}  # fmt: skip
    version = await fetch_one(prefs, "SELECT schema, created_by, change_note FROM artifact_version"
                              " WHERE artifact_id = %s AND version = 3", persona_id)  # fmt: skip
    assert version[0]["mode"] == "prompt" and version[1:] == ("user", "reset to the base model")
    async with prefs.db.connection() as conn:
        (shaped,) = [c for c in await sources.adapter_candidates(conn, user_id)
                     if c.id == persona_id]  # fmt: skip
    assert shaped.mode == "prompt" and shaped.pending_instructions is None
    listed = (await api.get("/v1/preferences", headers=headers)).json()["data"]["items"]
    assert listed and all(not i["trainable"] for i in listed)


async def test_a_reset_cancels_a_running_job_whose_result_is_then_refused(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    sent = await _feedback(api, prefs, user_id, headers, THRESHOLD)
    job_id = next(f["training"]["job_id"] for f in sent if f["training"]["job_id"])
    assert await _claim(prefs, job_id) is not None
    await api.post("/v1/me/personalization/reset", headers=headers, json={})
    async with prefs.db.connection() as conn, conn.transaction():
        assert not await jobs.heartbeat(conn, job_id, {"step": 9})
        assert not await jobs.succeed(conn, job_id, policy=_policy(prefs), new_version=2,
                                      loss=0.5)  # fmt: skip
    ((_, status, meta, _, _),) = await _jobs(prefs, user_id)
    assert (status, meta["reason"]) == ("cancelled", "model reset to the base")


async def test_lost_and_crashed_jobs_are_driven_again(api, prefs, settings) -> None:
    user_id, headers = await signed_user(api)
    sent = await _feedback(api, prefs, user_id, headers, THRESHOLD)
    job_id = next(f["training"]["job_id"] for f in sent if f["training"]["job_id"])
    # The local queue server restarted after the message went out: the dispatcher re-drives.
    async with prefs.db.connection() as conn, conn.transaction():
        later = (await (await conn.execute("SELECT now() + interval '1 second'")).fetchone())[0]
        again = await redrivers()[TRAIN_QUEUE](conn, prefs.settings, later)
    assert again >= 1  # this job's, and any other queued job's of the session
    keys = [m[1] for m in await _messages(prefs, job_id)]
    assert keys == [f"train:{job_id}:1", f"train:{job_id}:1:again:{int(later.timestamp())}"]
    # A worker died mid-run: no heartbeat for longer than TRAINING_STALE_AFTER_S. The
    # function's scheduled sweep retries it.
    assert await _claim(prefs, job_id) is not None
    async with prefs.db.connection() as conn, conn.transaction():
        await conn.execute("UPDATE training_job SET updated_at = now() - interval '3 hours'"
                           " WHERE id = %s", (job_id,))  # fmt: skip
    internal = internal_app(prefs.settings, services=prefs)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=internal),
                                 base_url="http://internal") as client:  # fmt: skip
        swept = await client.post("/functions/PreferencesFunction/events", json={
            "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})  # fmt: skip
    assert swept.status_code == 200, swept.text
    assert swept.json()["data"]["recovered"] >= 1
    ((_, status, meta, _, _),) = await _jobs(prefs, user_id)
    assert (status, meta["attempt"]) == ("queued", 2)
    assert "no heartbeat" in meta["reason"]
    assert [m[1] for m in await _messages(prefs, job_id)][-1] == f"train:{job_id}:2"


async def test_the_view_shows_the_schedule(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    await _feedback(api, prefs, user_id, headers, THRESHOLD - 1)
    async with prefs.db.connection() as conn:
        seen = await feedback.view(conn, user_id, policy=_policy(prefs))
    assert (seen.training.new_events, seen.training.threshold) == (THRESHOLD - 1, THRESHOLD)
    assert seen.training.active_job is None and seen.training.cooldown_until is None


async def test_lower_tiers_wait_while_other_users_jobs_are_active(settings, service, migrated):
    tiers = Services.from_settings(prefs_settings(
        settings, service, training_threshold_events=1,
        training_tier_delay_s={"admin": 0, "pro": 0, "free": 300},
    ))  # fmt: skip
    try:
        async with gateway_client(tiers.settings, tiers) as client:
            made = {}
            users = (("first", "user", "free"), ("free", "user", "free"),
                     ("pro", "user", "pro"), ("admin", "admin", "free"))  # fmt: skip
            for name, role, plan in users:
                user_id, headers = await signed_user(client)
                async with tiers.db.connection() as conn:
                    await conn.execute("UPDATE app_user SET role = %s, plan_tier = %s"
                                       " WHERE id = %s", (role, plan, user_id))  # fmt: skip
                (sent,) = await _feedback(client, tiers, user_id, headers, 1)
                assert sent["training"]["outcome"] == "queued"
                job_id = sent["training"]["job_id"]
                ((_, _, meta, _, _),) = await _jobs(tiers, user_id)
                ((_, _, delay, _, _),) = await _messages(tiers, job_id)
                made[name] = (meta["tier"], meta["priority"], delay.total_seconds())
    finally:
        await tiers.aclose()
    # "first" found the others' jobs of this session active, or none: its delay is 0 or 300.
    assert made["first"][:2] == ("free", 2) and made["first"][2] in (0, 300)
    assert made["free"] == ("free", 2, 300)  # "first"'s job is active
    assert made["pro"] == ("pro", 1, 0) and made["admin"] == ("admin", 0, 0)
