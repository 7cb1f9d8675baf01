"""The architect step on the real stack: the real small model (the session's inference
service) run on demand by an admin, and a scripted model, show that every outcome is counted,
that each stored proposal went through validation (`rejected` with its problems, or `pending`
with its dry-run, never approved or applied: CONFIGOPS_AUTO_APPROVE_OWN is on here and does not
apply to the system), and that the artifacts are left as they were."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence

import httpx
import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from infra.gateway.app import internal_app
from shared.domain.configops import architect, architect_runs
from shared.domain.configops.architect import ArchitectReport
from shared.domain.llm.backend import Completion, GenerationParams, Message, TokenCount, Usage
from shared.platform.errors import Conflict
from shared.services import Services
from tests.inference import TOKEN
from tests.integration.authkit import bearer, sign_up
from tests.integration.configkit import admin
from tests.integration.conftest import gateway_client
from tests.integration.queuekit import queue_url

pytestmark = pytest.mark.integration
BUDGET_KEY = "rate:configops:system"


class ScriptedModel:
    """An LLM backend that answers the prompt about each artifact with `answers[its name]`
    (`[]` when none is scripted)."""

    def __init__(self, answers: dict[str, str] | str) -> None:
        self.answers, self.asked = answers, 0

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        return TokenCount(sum(len(m.content) for m in messages) // 3, 2048)

    async def complete(
        self, messages: Sequence[Message], params: GenerationParams, *, request_id: str | None
    ) -> Completion:
        self.asked += 1
        assert 48 <= params.max_tokens <= 1024 and params.temperature == 0.0
        prompt = messages[-1].content
        if isinstance(self.answers, str):
            return Completion(text=self.answers, finish_reason="stop", usage=Usage(900, 60))
        about = next((n for n in self.answers if f"The artifact {n} (" in prompt), None)
        text = self.answers[about] if about else "[]"
        return Completion(text=text, finish_reason="stop", usage=Usage(900, 60))


@pytest.fixture(scope="module")
async def architect_services(migrated, settings, service):
    """Services on the session's inference service, with the auto-approve rule on: it must
    not apply to the system's proposals."""
    model = settings.model_copy(update={
        "inference_url": service, "inference_token": SecretStr(TOKEN), "chat_max_tokens": 32,
        "configops_auto_approve_own": True,
    })  # fmt: skip
    made = Services.from_settings(model)
    yield made
    await made.aclose()


async def _targets(pool) -> dict[str, dict]:
    async with pool.connection() as conn:
        cursor = await conn.cursor(row_factory=dict_row).execute(
            "SELECT a.id::text, a.type, a.version, a.schema,"
            " (SELECT count(*) FROM artifact_version v WHERE v.artifact_id = a.id) AS versions"
            " FROM artifact a WHERE a.owner_user_id IS NULL AND (a.type, a.name) IN"
            " (('policy.routing', 'default_user_routing'), ('workflow.chat', 'default_chat'))"
        )
        return {row["type"]: row for row in await cursor.fetchall()}


async def _patches(pool, ids: list[int]) -> list[dict]:
    async with pool.connection() as conn:
        cursor = await conn.cursor(row_factory=dict_row).execute(
            "SELECT p.id, p.status, p.proposer, p.proposed_by, p.decided_by, p.validation,"
            " p.dry_run, p.decision_reason, p.applied_version, p.justification,"
            " (SELECT count(*) FROM outbox_message o WHERE o.dedup_key ="
            "  'config_patch:' || p.id || ':apply') AS apply_messages"
            " FROM config_patch p WHERE p.id = ANY(%s) ORDER BY p.id",
            (ids,),
        )
        return await cursor.fetchall()


def _assert_counted(report: ArchitectReport) -> None:
    """Every outcome is counted once (shared.domain.configops.architect's docstring)."""
    assert report.targets == report.asked + report.too_long
    assert report.asked == report.answered + report.model_failed
    no_json = report.unparsable_reasons.get(architect.NO_JSON, 0)
    assert no_json + report.empty <= report.answered
    assert report.items == (
        report.unparsable - no_json + report.over_limit + report.rate_limited + report.refused
        + report.duplicate + report.proposed
    )  # fmt: skip
    assert report.proposed == report.rejected_invalid + report.pending + report.unexpected
    assert report.unexpected == 0 and len(report.patch_ids) == report.proposed
    assert sum(report.unparsable_reasons.values()) == report.unparsable


async def _assert_only_validated(pool, report: ArchitectReport) -> list[dict]:
    rows = await _patches(pool, report.patch_ids)
    assert [r["id"] for r in rows] == report.patch_ids
    for row in rows:
        assert row["proposer"] == "system_llm" and row["proposed_by"] is None
        assert row["decided_by"] is None and row["applied_version"] is None
        assert row["apply_messages"] == 0, "nothing of it was queued for applying"
        assert row["justification"].startswith(architect.JUSTIFICATION_PREFIX)
        if row["status"] == "rejected":
            assert row["validation"]["ok"] is False and row["validation"]["problems"]
            assert row["dry_run"] is None
        else:
            assert row["status"] == "pending", row
            assert row["validation"] == {"ok": True, "problems": []}
            assert isinstance(row["dry_run"], dict)
    return rows


async def test_the_real_model_run_by_an_admin_only_proposes(settings, architect_services):
    pool = architect_services.db
    before = await _targets(pool)
    assert set(before) == {"policy.routing", "workflow.chat"}
    async with gateway_client(settings, architect_services) as api:
        headers = await admin(api, settings)
        turn = await api.post("/v1/chat", headers=headers,
                              json={"message": {"content": "Name a primary colour."}})  # fmt: skip
        assert turn.status_code == 200, turn.text  # a traced turn for the metrics
        started = await api.post("/v1/admin/architect/run", headers=headers)
        assert started.status_code == 202, started.text
        run = started.json()["data"]["run"]
        assert started.json()["data"]["queued"] is True and run["status"] == "queued"
        # Asked again while it waits: the same run, nothing more queued.
        again = await api.post("/v1/admin/architect/run", headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["data"] == {"run": run, "queued": False}
        member = await sign_up(api)
        for method, path in (("POST", "/v1/admin/architect/run"),
                             ("GET", "/v1/admin/architect/runs"),
                             ("GET", f"/v1/admin/architect/runs/{run['id']}")):  # fmt: skip
            refused = await api.request(method, path, headers=bearer(member["access_token"]))
            assert refused.status_code == 403, (path, refused.text)
        # Its one message, from the real ArchitectQueue, through the function's /events.
        await _deliver_queued(architect_services, run["id"])
        ended = await api.get(f"/v1/admin/architect/runs/{run['id']}", headers=headers)
        assert ended.status_code == 200, ended.text
        assert ended.json()["data"]["status"] == "done", ended.text
        listed = await api.get("/v1/admin/architect/runs?limit=1", headers=headers)
        assert [r["id"] for r in listed.json()["data"]["items"]] == [run["id"]]
        assert (await api.get("/v1/admin/architect/runs/999999999",
                              headers=headers)).status_code == 404  # fmt: skip
    counts = ended.json()["data"]["report"]
    report = ArchitectReport(**counts)
    print("architect run on the real model:", json.dumps(counts, sort_keys=True))
    assert report.skipped is None and report.targets == 2 and report.asked >= 1
    assert report.model_failed == 0, report.model_error  # it answered, however badly
    _assert_counted(report)
    await _assert_only_validated(pool, report)
    after = await _targets(pool)
    for kind, row in before.items():  # no version was written, none moved
        assert (after[kind]["version"], after[kind]["versions"]) == (row["version"],
                                                                      row["versions"])  # fmt: skip
        assert after[kind]["schema"] == row["schema"]
    async with pool.connection() as conn:
        audited = await (await conn.execute(
            "SELECT details FROM audit_event WHERE event = 'configops.architect_run'"
            " ORDER BY id DESC LIMIT 1")).fetchone()  # fmt: skip
    assert audited is not None and audited[0]["patch_ids"] == report.patch_ids


async def _deliver_queued(services: Services, run_id: int) -> None:
    """Receives the run's message from ArchitectQueue and hands it to the function's /events
    as the dispatcher would (an SQS batch of one), then deletes it."""
    url = queue_url(services.sqs, services.template, "ArchitectQueue")
    deadline, found = time.monotonic() + 30, None
    while found is None and time.monotonic() < deadline:
        got = await asyncio.to_thread(services.sqs.receive_message, QueueUrl=url,
                                      MaxNumberOfMessages=10, WaitTimeSeconds=1)  # fmt: skip
        for message in got.get("Messages", []):
            if json.loads(message["Body"]) == {"run_id": run_id}:
                found = message
    assert found is not None, "the run's message never reached ArchitectQueue"
    name = services.template.queue_name("ArchitectQueue")
    record = {"messageId": found["MessageId"], "receiptHandle": found["ReceiptHandle"],
              "body": found["Body"], "attributes": {"ApproximateReceiveCount": "1"},
              "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{name}"}  # fmt: skip
    app = internal_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        done = await client.post("/functions/ArchitectFunction/events",
                                 json={"Records": [record]}, timeout=600)  # fmt: skip
    assert done.status_code == 200 and done.json()["batchItemFailures"] == [], done.text
    await asyncio.to_thread(services.sqs.delete_message, QueueUrl=url,
                            ReceiptHandle=found["ReceiptHandle"])  # fmt: skip


def _valid(rule_id: str) -> dict:
    rule = {"id": rule_id, "when": "safety_risk == 'high'",
            "action": {"type": "deactivate_all_adapters"}}  # fmt: skip
    return {"artifact": "default_user_routing", "justification": "quiet adapters when risky",
            "patch": [{"op": "add", "path": "/rules/-", "value": rule}]}  # fmt: skip


def _invalid(before: dict[str, dict]) -> dict:
    workflow = before["workflow.chat"]["schema"]
    node = next(i for i, n in enumerate(workflow["nodes"]) if n["type"] == "tool_call")
    return {"artifact": "default_chat", "justification": "search the web",
            "patch": [{"op": "replace", "path": f"/nodes/{node}/tool",
                       "value": "web.search_v9"}]}  # fmt: skip


def _rule_id() -> str:
    return f"architect_{uuid.uuid4().hex[:8]}"


class FailingModel(ScriptedModel):
    def __init__(self) -> None:
        super().__init__("")

    async def complete(
        self, messages: Sequence[Message], params: GenerationParams, *, request_id: str | None
    ) -> Completion:
        raise ConnectionError("the model is down")


async def test_a_scripted_valid_proposal_is_pending_and_an_invalid_one_rejected(
    architect_services,
) -> None:
    pool, redis = architect_services.db, architect_services.redis
    await redis.delete(BUDGET_KEY)  # a fresh system budget: earlier runs may have spent it
    before = await _targets(pool)
    answer = json.dumps([_valid(_rule_id()), "and a stray note"])
    model = ScriptedModel({
        "default_user_routing": f"Here you go:\n```json\n{answer}\n```",
        "default_chat": json.dumps([_invalid(before)]),
    })  # fmt: skip
    report = await architect.run(pool, model, redis=redis, settings=architect_services.settings)
    assert model.asked == 2 and report.answered == 2 and report.items == 3
    _assert_counted(report)
    assert (report.proposed, report.pending, report.rejected_invalid) == (2, 1, 1)
    assert report.unparsable == 1 and report.unparsable_reasons == {"not an object": 1}
    assert report.problem_kinds == {"reference": 1}
    valid, invalid = await _assert_only_validated(pool, report)
    assert valid["status"] == "pending" and valid["decision_reason"] is None
    assert valid["dry_run"]["kind"] == "policy.routing" and "replayed" in valid["dry_run"]
    assert invalid["status"] == "rejected"
    assert "web.search_v9" in invalid["validation"]["problems"][0]["message"]
    assert invalid["decision_reason"].startswith("invalid")
    after = await _targets(pool)
    assert {k: r["version"] for k, r in after.items()} == {
        k: r["version"] for k, r in before.items()
    }
    # Asked again, the same answer: the patch still awaiting a decision is not put twice.
    again = await architect.run(pool, model, redis=redis, settings=architect_services.settings)
    _assert_counted(again)
    assert (again.duplicate, again.pending, again.rejected_invalid) == (1, 0, 1)


async def test_the_budget_the_lock_and_the_switch(architect_services) -> None:
    pool, redis = architect_services.db, architect_services.redis
    before = await _targets(pool)
    three = json.dumps([_valid(_rule_id()) for _ in range(3)])
    model = ScriptedModel({"default_user_routing": three})
    # One proposal an hour for the system: the first is stored, the other two are refused.
    await redis.delete(BUDGET_KEY)
    tight = architect_services.settings.model_copy(update={"rate_configops_per_hour": 1})
    report = await architect.run(pool, model, redis=redis, settings=tight)
    _assert_counted(report)
    assert (report.proposed, report.pending, report.rate_limited) == (1, 1, 2)
    assert report.empty == 1  # the workflow's answer: `[]`
    # At most ARCHITECT_MAX_PROPOSALS are submitted; the rest are counted (the one submitted
    # is the pending patch of the first run: a duplicate, not proposed again).
    await redis.delete(BUDGET_KEY)
    one = architect_services.settings.model_copy(update={"architect_max_proposals": 1})
    report = await architect.run(pool, model, redis=redis, settings=one)
    _assert_counted(report)
    assert (report.duplicate, report.proposed, report.over_limit) == (1, 0, 2)
    # One run at a time: the schedule skips, an admin is told 409; off, the schedule skips.
    await redis.set(architect.LOCK_KEY, "someone", ex=60)
    try:
        busy = await architect.run(pool, model, redis=redis, settings=one, scheduled=True)
        assert busy.skipped and busy.asked == 0
        with pytest.raises(Conflict):
            await architect.run(pool, model, redis=redis, settings=one)
    finally:
        await redis.delete(architect.LOCK_KEY)
    off = one.model_copy(update={"architect_enabled": False})
    assert (await architect.run(pool, model, redis=redis, settings=off, scheduled=True)).skipped
    # An answer with no JSON, and a model that fails, are counted too.
    prose = await architect.run(pool, ScriptedModel("All good."), redis=redis, settings=one)
    assert (prose.answered, prose.unparsable, prose.items, prose.proposed) == (2, 2, 0, 0)
    _assert_counted(prose)
    down = await architect.run(pool, FailingModel(), redis=redis, settings=one)
    assert (down.asked, down.answered, down.model_failed) == (2, 0, 2)
    assert "the model is down" in (down.model_error or "")
    _assert_counted(down)
    assert model.asked == 4  # two runs of two calls: the skipped runs never asked
    after = await _targets(pool)
    assert {k: r["version"] for k, r in after.items()} == {
        k: r["version"] for k, r in before.items()
    }


async def test_the_schedule_runs_it_through_the_function(architect_services) -> None:
    """The dispatcher's Scheduled Event at the function's /events (as `make run` fires it):
    switched off it does nothing; on, it runs unless a run holds the lock."""
    tick = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    off = architect_services.settings.model_copy(update={"architect_enabled": False})
    off_services = Services.from_settings(off)
    redis = architect_services.redis
    await redis.set(architect.LOCK_KEY, "someone", ex=60)
    try:
        for services, why in (
            (off_services, "ARCHITECT_ENABLED is off"),
            (architect_services, "another architect run is in progress"),
        ):
            app = internal_app(services.settings, services=services)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://internal") as c:
                done = await c.post("/functions/ArchitectFunction/events", json=tick)
            assert done.status_code == 200, done.text
            ran = done.json()["data"]
            assert ran["status"] == "skipped" and ran["trigger"] == "schedule", ran
            assert ran["report"]["skipped"] == why and ran["report"]["asked"] == 0
    finally:
        await redis.delete(architect.LOCK_KEY)
        await off_services.aclose()


async def test_a_run_whose_worker_died_is_run_again_and_never_blocks_the_next(
    architect_services,
) -> None:
    """A run left `running` past the longest a run may take: its message, back from the
    queue, claims it again; a new request first marks it failed, so it blocks nothing."""
    async with architect_services.db.connection() as conn:
        run, queued = await architect_runs.request(conn, requested_by=None, stale_after_s=60)
        assert queued and run.status == "queued"
        assert (await architect_runs.claim(conn, run.id, stale_after_s=60)).status == "running"
        assert await architect_runs.claim(conn, run.id, stale_after_s=60) is None  # under way
        again, _ = await architect_runs.request(conn, requested_by=None, stale_after_s=60)
        assert again.id == run.id  # still under way: the same run comes back
        age = "UPDATE architect_run SET started_at = now() - interval '2 minutes' WHERE id = %s"
        await conn.execute(age, (run.id,))
        redriven = await architect_runs.claim(conn, run.id, stale_after_s=60)
        assert redriven is not None and redriven.status == "running"
        await conn.execute(age, (run.id,))
        fresh, queued = await architect_runs.request(conn, requested_by=None, stale_after_s=60)
        assert queued and fresh.id != run.id
        dead = await architect_runs.get(conn, run.id)
        assert dead.status == "failed" and "worker stopped" in (dead.error or "")
        skipped = ArchitectReport(skipped="a test run").as_dict()  # what a run records
        await architect_runs.finish(conn, fresh.id, report=skipped)
        assert (await architect_runs.get(conn, fresh.id)).status == "skipped"
