"""The adapters function through the in-process gateway and the real stack: listing and
reading adapters with their versions and metrics, the user's training jobs, the admin's
pointer moves (rollback, approval: the next `resolve` serves them), discards (never the
served version; a candidate's files go), the persona's instructions after a rollback, and the
training metrics.

Versions are published through `registry.publish` (the `adapters` fixture); candidates (not
promoted, so not served) and training_job rows are written as rows, as the train function
leaves them."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from infra.admin import promote
from shared.domain.adapters import registry, versions
from shared.domain.adapters.objects import FILES
from shared.domain.adapters.registry import AdapterFiles
from shared.neural import peft
from tests.integration.adapterkit import candidate, connect, job_row, new_job_id, persona_of
from tests.integration.authkit import bearer, sign_up
from tests.integration.conftest import adapter_weights

pytestmark = pytest.mark.integration

METRICS = {"heldout_loss_new": 1.9, "heldout_loss_current": 1.8, "alignment_new": 0.5,
           "alignment_current": 0.5, "n_heldout": 2, "train_loss": 1.2, "steps": 24,
           "seconds": 95.0}  # fmt: skip


async def _admin(api, settings) -> dict:
    signed = await sign_up(api)
    await promote(settings, signed["user"]["email"])
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    return {**signed, "access_token": refreshed.json()["data"]["access_token"]}


def _files(seed: int) -> AdapterFiles:
    return AdapterFiles(*peft.dump_with_checksum(adapter_weights(seed)))


async def _skill_with_candidate(adapters, owner: str) -> tuple[str, int, str, str]:
    """An adapter at v1, v2 (served) and a candidate v3 with its job: (id, candidate
    version, its prefix, its job id)."""
    first = await adapters.publish(owner, 101)
    await adapters.publish(owner, 102, adapter_id=first.adapter_id)
    job_id = new_job_id()
    number, prefix = await candidate(
        adapters.s3, adapters.bucket, owner, first.adapter_id, _files(103), metrics=METRICS,
        job_id=job_id,
    )  # fmt: skip
    return first.adapter_id, number, prefix, job_id


def _exists(adapters, key: str) -> bool:
    try:
        adapters.s3.head_object(Bucket=adapters.bucket, Key=key)
    except ClientError:
        return False
    return True


async def _resolve(adapter_id: str) -> registry.AdapterRecord:
    async with await connect() as conn:
        return await registry.resolve(conn, adapter_id)


async def test_adapters_and_their_versions_are_listed_to_who_may_use_them(api, adapters) -> None:
    a, b = await sign_up(api), await sign_up(api)
    adapter_id, kept, _, job_id = await _skill_with_candidate(adapters, a["user"]["id"])
    shared = await adapters.publish(b["user"]["id"], 104, kind="style")
    private = await adapters.publish(b["user"]["id"], 105)
    async with await connect() as conn:
        await conn.execute(
            "UPDATE artifact SET visibility = 'shared' WHERE id = %s", (shared.adapter_id,)
        )
        await conn.execute(
            "INSERT INTO adapter_router_state (artifact_id, usage_count, success_score)"
            " VALUES (%s, 7, 0.25)",
            (adapter_id,),
        )

    listed = await api.get("/v1/adapters", headers=bearer(a["access_token"]))
    assert listed.status_code == 200, listed.text
    items = {i["id"]: i for i in listed.json()["data"]["items"]}
    mine = items[adapter_id]
    assert (mine["owner"], mine["adapter_type"], mine["version"]) == ("me", "skill", 2)
    assert (mine["latest_version"], mine["version_count"], mine["has_weights"]) == (3, 3, True)
    assert mine["router"]["usage_count"] == 7 and mine["router"]["success_score"] == 0.25
    assert items[shared.adapter_id]["owner"] == "shared"
    assert private.adapter_id not in items
    only_style = await api.get("/v1/adapters", headers=bearer(a["access_token"]),
                               params={"type": "style", "owner": "all"})  # fmt: skip
    assert {i["adapter_type"] for i in only_style.json()["data"]["items"]} == {"style"}
    own = await api.get("/v1/adapters", headers=bearer(a["access_token"]), params={"owner": "me"})
    assert [i["id"] for i in own.json()["data"]["items"]] == [adapter_id]

    read = await api.get(f"/v1/adapters/{adapter_id}", headers=bearer(a["access_token"]))
    assert read.status_code == 200, read.text
    detail = read.json()["data"]
    assert detail["version"] == 2
    numbers = [(v["version"], v["served"], v["candidate"]) for v in detail["versions"]["items"]]
    assert numbers == [(kept, False, True), (2, True, False), (1, False, False)]
    newest = detail["versions"]["items"][0]
    assert newest["metrics"] == METRICS and newest["job_id"] == job_id
    assert newest["promoted"] is False and newest["training_config"]["rank"] == 4
    # Paging the versions.
    first = await api.get(f"/v1/adapters/{adapter_id}", headers=bearer(a["access_token"]),
                          params={"limit": 2})  # fmt: skip
    page = first.json()["data"]["versions"]
    assert [v["version"] for v in page["items"]] == [3, 2] and page["next_cursor"]
    rest = await api.get(f"/v1/adapters/{adapter_id}", headers=bearer(a["access_token"]),
                         params={"limit": 2, "cursor": page["next_cursor"]})  # fmt: skip
    tail = rest.json()["data"]["versions"]
    assert [v["version"] for v in tail["items"]] == [1] and tail["next_cursor"] is None
    bad = await api.get(f"/v1/adapters/{adapter_id}", headers=bearer(a["access_token"]),
                        params={"cursor": "not-a-cursor"})  # fmt: skip
    assert bad.status_code == 400

    # Another user: a's private adapter is not found; a shared one is readable, job ids hidden.
    as_b = await api.get(f"/v1/adapters/{adapter_id}", headers=bearer(b["access_token"]))
    assert as_b.status_code == 404 and as_b.json()["error"]["code"] == "not_found"
    seen_by_b = (await api.get("/v1/adapters", headers=bearer(b["access_token"]))).json()
    assert adapter_id not in {i["id"] for i in seen_by_b["data"]["items"]}
    foreign = await api.get(f"/v1/adapters/{shared.adapter_id}", headers=bearer(a["access_token"]))
    assert foreign.status_code == 200 and foreign.json()["data"]["owner"] == "shared"


async def test_training_jobs_show_status_progress_metrics_and_reason(api, adapters) -> None:
    a, b = await sign_up(api), await sign_up(api)
    user = a["user"]["id"]
    adapter_id, kept, _, _ = await _skill_with_candidate(adapters, user)
    now = dt.datetime.now(dt.UTC)
    failed = await job_row(
        user, adapter_id, status="failed", ended=now - dt.timedelta(minutes=30), meta={
            "attempt": 3, "reason": "out of memory",
            "errors": [{"attempt": 1, "reason": "worker died"}, {"attempt": 3,
                                                                 "reason": "out of memory"}],
        },
    )  # fmt: skip
    rejected = await job_row(
        user, adapter_id, status="rejected", new_version=kept, loss=1.2,
        ended=now - dt.timedelta(minutes=20),
        meta={"progress": {"step": 24, "total": 24, "loss": 1.2}, "base_version": 2},
    )  # fmt: skip
    running = await job_row(
        user, adapter_id, status="running", ended=now - dt.timedelta(minutes=1), loss=None,
        meta={"progress": {"step": 5, "total": 24, "loss": 2.5}},
    )  # fmt: skip

    listed = await api.get("/v1/training/jobs", headers=bearer(a["access_token"]))
    assert listed.status_code == 200, listed.text
    assert [j["id"] for j in listed.json()["data"]["items"]] == [running, rejected, failed]
    only_failed = await api.get("/v1/training/jobs", headers=bearer(a["access_token"]),
                                params={"status": "failed"})  # fmt: skip
    assert [j["id"] for j in only_failed.json()["data"]["items"]] == [failed]
    paged = await api.get("/v1/training/jobs", headers=bearer(a["access_token"]),
                          params={"limit": 2})  # fmt: skip
    cursor = paged.json()["data"]["next_cursor"]
    after = await api.get("/v1/training/jobs", headers=bearer(a["access_token"]),
                          params={"limit": 2, "cursor": cursor})  # fmt: skip
    assert [j["id"] for j in after.json()["data"]["items"]] == [failed]

    done = (await api.get(f"/v1/training/jobs/{rejected}",
                          headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert (done["status"], done["new_version"], done["promoted"]) == ("rejected", kept, False)
    assert done["version_state"] == "kept" and done["metrics"] == METRICS
    assert done["progress"] == {"step": 24, "total": 24, "loss": 1.2}
    assert (done["events_used"], done["base_version"], done["loss"]) == (12, 2, 1.2)
    assert done["started_at"] < done["finished_at"]
    now_running = (await api.get(f"/v1/training/jobs/{running}",
                                 headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert now_running["progress"] == {"step": 5, "total": 24, "loss": 2.5}
    assert now_running["finished_at"] is None and now_running["version_state"] is None
    gave_up = (await api.get(f"/v1/training/jobs/{failed}",
                             headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert gave_up["reason"] == "out of memory" and gave_up["attempt"] == 3
    assert [e["attempt"] for e in gave_up["errors"]] == [1, 3]

    # Another user sees none of them.
    for job_id in (failed, rejected, running):
        as_b = await api.get(f"/v1/training/jobs/{job_id}", headers=bearer(b["access_token"]))
        assert as_b.status_code == 404
    seen_by_b = await api.get("/v1/training/jobs", headers=bearer(b["access_token"]))
    assert seen_by_b.json()["data"]["items"] == []


async def test_admins_move_the_pointer_and_the_next_resolve_serves_it(
    api, adapters, settings
) -> None:
    admin, a = await _admin(api, settings), await sign_up(api)
    adapter_id, kept, prefix, _ = await _skill_with_candidate(adapters, a["user"]["id"])
    served_before = await _resolve(adapter_id)
    assert served_before.version == 2
    as_admin, as_user = bearer(admin["access_token"]), bearer(a["access_token"])
    base = f"/v1/admin/adapters/{adapter_id}"
    # Plain users may not.
    assert (await api.post(f"{base}/rollback", json={"version": 1},
                           headers=as_user)).status_code == 403  # fmt: skip
    assert (await api.post(f"{base}/versions/{kept}/approve", headers=as_user)).status_code == 403
    assert (await api.delete(f"{base}/versions/{kept}", headers=as_user)).status_code == 403
    assert (await _resolve(adapter_id)).version == 2

    before = (await api.get(f"/v1/adapters/{adapter_id}", headers=as_user)).json()["data"]
    rolled = await api.post(f"{base}/rollback", json={"version": 1, "note": "regressed"},
                            headers=as_admin)  # fmt: skip
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["data"] | {"updated_at": None} == {
        "adapter_id": adapter_id, "version": 1, "previous_version": 2, "moved": True,
        "updated_at": None,
    }  # fmt: skip
    served = await _resolve(adapter_id)
    assert served.version == 1 and served.checksum == _files(101).checksum
    after = (await api.get(f"/v1/adapters/{adapter_id}", headers=as_user)).json()["data"]
    assert after["version"] == 1 and after["updated_at"] > before["updated_at"]
    assert after["has_weights"] and after["latest_version"] == kept
    # Again: nothing moves. An unknown version, or adapter: 404.
    again = await api.post(f"{base}/rollback", json={"version": 1}, headers=as_admin)
    assert again.status_code == 200 and again.json()["data"]["moved"] is False
    assert (await api.post(f"{base}/rollback", json={"version": 99},
                           headers=as_admin)).status_code == 404  # fmt: skip
    unknown = "/v1/admin/adapters/00000000-0000-4000-8000-000000000000/rollback"
    assert (await api.post(unknown, json={"version": 1}, headers=as_admin)).status_code == 404

    # Approval is for candidates: v2 was promoted when published.
    refused = await api.post(f"{base}/versions/2/approve", headers=as_admin)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["reason"] == "not_a_candidate"
    approved = await api.post(f"{base}/versions/{kept}/approve", headers=as_admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["data"]["version"] == kept
    served = await _resolve(adapter_id)
    assert (served.version, served.prefix) == (kept, prefix)
    assert served.checksum == _files(103).checksum

    # The served version is never discarded; a candidate is, with its files, and its number
    # is never given again.
    refused = await api.delete(f"{base}/versions/{kept}", headers=as_admin)
    assert refused.status_code == 409 and refused.json()["error"]["details"]["reason"] == "served"
    assert all(_exists(adapters, prefix + name) for name in FILES)
    back = await api.post(f"{base}/rollback", json={"version": 2}, headers=as_admin)
    assert back.json()["data"]["version"] == 2
    gone = await api.delete(f"{base}/versions/{kept}", headers=as_admin)
    assert gone.status_code == 200, gone.text
    assert gone.json()["data"] == {"adapter_id": adapter_id, "version": kept, "discarded": True,
                                   "files_removed": True}  # fmt: skip
    assert not any(_exists(adapters, prefix + name) for name in FILES)
    detail = (await api.get(f"/v1/adapters/{adapter_id}", headers=as_user)).json()["data"]
    assert [v["version"] for v in detail["versions"]["items"]] == [2, 1]
    assert (await api.delete(f"{base}/versions/{kept}", headers=as_admin)).status_code == 404
    async with await connect() as conn:
        assert await versions.next_number(conn, adapter_id) == kept + 1
    assert (await _resolve(adapter_id)).version == 2

    # Every move is audited, naming the admin and the owner.
    audit = await api.get("/v1/admin/audit", headers=as_admin,
                          params={"user_id": a["user"]["id"]})  # fmt: skip
    events = [(e["event"], e["details"].get("from"), e["details"].get("to"))
              for e in audit.json()["data"]["items"]
              if e["details"].get("adapter_id") == adapter_id]  # fmt: skip
    assert events == [
        ("adapter_version_discarded", None, None),
        ("adapter_rolled_back", kept, 2),
        ("adapter_version_approved", 1, kept),
        ("adapter_rolled_back", 2, 1),
    ]
    moves = [e for e in audit.json()["data"]["items"] if e["event"] == "adapter_rolled_back"]
    first_move = next(e for e in moves if e["details"]["to"] == 1)
    assert first_move["actor_user_id"] == admin["user"]["id"]
    assert first_move["subject_user_id"] == a["user"]["id"]
    assert first_move["details"]["note"] == "regressed"


async def test_a_rollback_makes_what_the_later_version_learned_pending_again(
    api, adapters, settings
) -> None:
    admin, a = await _admin(api, settings), await sign_up(api)
    user = a["user"]["id"]
    persona = await persona_of(user)
    await adapters.publish(user, 111, kind="persona", adapter_id=persona)  # v2: weights
    async with await connect() as conn:
        await conn.execute(
            "INSERT INTO persona_instruction (user_id, kind, text, learned_version)"
            " VALUES (%s, 'always', 'answer in French', 2)",
            (user,),
        )
    state = (await api.get("/v1/me/personalization",
                           headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert [(i["text"], i["applied_as"]) for i in state["instructions"]] == [
        ("answer in French", "weights")
    ]
    rolled = await api.post(f"/v1/admin/adapters/{persona}/rollback", json={"version": 1},
                            headers=bearer(admin["access_token"]))  # fmt: skip
    assert rolled.status_code == 200, rolled.text
    state = (await api.get("/v1/me/personalization",
                           headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert state["adapter_version"] == 1 and state["has_weights"] is False
    assert [i["applied_as"] for i in state["instructions"]] == ["prompt"]
    # Serving v2 again: the instruction stays pending (no version served since learned it).
    await api.post(f"/v1/admin/adapters/{persona}/rollback", json={"version": 2},
                   headers=bearer(admin["access_token"]))  # fmt: skip
    state = (await api.get("/v1/me/personalization",
                           headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert state["has_weights"] and [i["applied_as"] for i in state["instructions"]] == ["prompt"]


async def test_a_reset_after_a_rollback_numbers_its_version_max_plus_one(
    api, adapters, settings
) -> None:
    admin, a = await _admin(api, settings), await sign_up(api)
    user = a["user"]["id"]
    persona = await persona_of(user)
    await adapters.publish(user, 121, kind="persona", adapter_id=persona)  # v2
    await adapters.publish(user, 122, kind="persona", adapter_id=persona)  # v3
    rolled = await api.post(f"/v1/admin/adapters/{persona}/rollback", json={"version": 2},
                            headers=bearer(admin["access_token"]))  # fmt: skip
    assert rolled.status_code == 200, rolled.text
    reset = await api.post("/v1/me/personalization/reset", json={},
                           headers=bearer(a["access_token"]))  # fmt: skip
    assert reset.status_code == 200, reset.text
    detail = (await api.get(f"/v1/adapters/{persona}",
                            headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert (detail["version"], detail["has_weights"]) == (4, False)
    assert [v["version"] for v in detail["versions"]["items"]] == [4, 3, 2, 1]


async def test_training_metrics_count_jobs_by_outcome(api, adapters, settings) -> None:
    admin, a = await _admin(api, settings), await sign_up(api)
    user = a["user"]["id"]
    persona = await persona_of(user)
    path = "/v1/admin/metrics"
    assert (await api.get(path, headers=bearer(a["access_token"]))).status_code == 403
    assert (await api.get(path)).status_code == 401

    def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    before = await api.get(path, headers=bearer(admin["access_token"]))
    assert before.status_code == 200, before.text
    assert before.headers["content-type"].startswith("text/plain")
    old = scrape(before.text)
    await job_row(user, persona, status="succeeded", new_version=None, loss=0.7, seconds=45,
                  ended=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))  # fmt: skip
    await job_row(user, persona, status="succeeded", new_version=None, loss=0.4, seconds=200)
    await job_row(user, persona, status="failed", seconds=20,
                  ended=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=9))  # fmt: skip
    new = scrape((await api.get(path, headers=bearer(admin["access_token"]))).text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return new[key] - old.get(key, 0.0)

    assert grew("training_jobs", status="succeeded") == 2
    assert grew("training_jobs", status="failed") == 1
    assert grew("training_jobs", status="running") == 0
    assert grew("training_job_duration_seconds_count", outcome="succeeded") == 2
    assert grew("training_job_duration_seconds_sum", outcome="succeeded") == pytest.approx(245)
    assert grew("training_job_duration_seconds_bucket", outcome="succeeded", le="60.0") == 1
    assert grew("training_job_duration_seconds_bucket", outcome="succeeded", le="300.0") == 2
    assert grew("training_job_duration_seconds_bucket", outcome="failed", le="30.0") == 1
    assert new[("training_job_last_loss", ())] == pytest.approx(0.4)
