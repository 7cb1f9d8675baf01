"""The admin's view of every user's training jobs and adapters (the adapters function, through
the in-process gateway and the real stack): plain users get 403; an admin lists another
user's jobs with the owner, filtered and paged, reads any adapter with its versions (job ids
included) and acts on them; bad query parameters are a 400 `validation_error` envelope.

Other tests write jobs and adapters to the same database at the same time, so the lists are
read filtered by this test's users, and unfiltered pages are walked until this test's rows
appear."""

from __future__ import annotations

import datetime as dt

import pytest

from infra.admin import promote
from shared.domain.adapters.registry import AdapterFiles
from shared.neural import peft
from tests.integration.adapterkit import candidate, job_row, new_job_id
from tests.integration.authkit import bearer, sign_up
from tests.integration.conftest import adapter_weights

pytestmark = pytest.mark.integration

METRICS = {"heldout_loss_new": 1.9, "heldout_loss_current": 1.8, "alignment_new": 0.5,
           "alignment_current": 0.5, "n_heldout": 2, "train_loss": 1.2, "steps": 24,
           "seconds": 95.0}  # fmt: skip
JOBS, ADAPTERS = "/v1/admin/training/jobs", "/v1/admin/adapters"


async def _admin(api, settings) -> dict:
    signed = await sign_up(api)
    await promote(settings, signed["user"]["email"])
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    return {**signed, "access_token": refreshed.json()["data"]["access_token"]}


async def _adapter_with_candidate(adapters, owner: str) -> tuple[str, int, str]:
    """A skill adapter at v1, v2 (served) and a candidate v3: (id, candidate, its job id)."""
    first = await adapters.publish(owner, 201)
    await adapters.publish(owner, 202, adapter_id=first.adapter_id)
    job_id = new_job_id()
    files = AdapterFiles(*peft.dump_with_checksum(adapter_weights(203)))
    number, _ = await candidate(adapters.s3, adapters.bucket, owner, first.adapter_id, files,
                                metrics=METRICS, job_id=job_id)  # fmt: skip
    return first.adapter_id, number, job_id


async def _walk(api, path: str, headers: dict, wanted: set[str], **params) -> dict[str, dict]:
    """Pages of `path` (newest first) until every id in `wanted` has been seen."""
    seen: dict[str, dict] = {}
    cursor = None
    for _ in range(20):
        query = {**params, "limit": 100} | ({"cursor": cursor} if cursor else {})
        page = await api.get(path, headers=headers, params=query)
        assert page.status_code == 200, page.text
        data = page.json()["data"]
        seen.update({i["id"]: i for i in data["items"]})
        cursor = data["next_cursor"]
        if wanted <= set(seen) or cursor is None:
            break
    return seen


async def test_plain_users_and_anonymous_callers_may_not(api, adapters) -> None:
    a = await sign_up(api)
    adapter = await adapters.publish(a["user"]["id"], 211)
    for path in (JOBS, ADAPTERS, f"{ADAPTERS}/{adapter.adapter_id}"):
        refused = await api.get(path, headers=bearer(a["access_token"]))
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
        assert (await api.get(path)).status_code == 401


async def test_an_admin_lists_every_users_jobs_with_their_owners(api, adapters, settings) -> None:
    admin, a, b = await _admin(api, settings), await sign_up(api), await sign_up(api)
    as_admin = bearer(admin["access_token"])
    user = a["user"]["id"]
    adapter_id, kept, _ = await _adapter_with_candidate(adapters, user)
    other = await adapters.publish(b["user"]["id"], 212)
    now = dt.datetime.now(dt.UTC)
    failed = await job_row(user, adapter_id, status="failed", ended=now - dt.timedelta(minutes=30),
                           meta={"attempt": 3, "reason": "out of memory"})  # fmt: skip
    rejected = await job_row(
        user, adapter_id, status="rejected", new_version=kept, loss=1.2,
        ended=now - dt.timedelta(minutes=20),
        meta={"progress": {"step": 24, "total": 24, "loss": 1.2}, "base_version": 2},
    )  # fmt: skip
    running = await job_row(user, adapter_id, status="running", loss=None,
                            ended=now - dt.timedelta(minutes=1),
                            meta={"progress": {"step": 5, "total": 24, "loss": 2.5}})  # fmt: skip
    bs = await job_row(b["user"]["id"], other.adapter_id, status="succeeded", loss=0.5,
                       ended=now - dt.timedelta(minutes=2))  # fmt: skip

    # Everyone's, newest first, each with its owner.
    seen = await _walk(api, JOBS, as_admin, {failed, rejected, running, bs})
    assert {failed, rejected, running, bs} <= set(seen)
    assert (seen[bs]["user_id"], seen[bs]["user_email"]) == (b["user"]["id"], b["user"]["email"])
    assert (seen[failed]["user_id"], seen[failed]["user_email"]) == (user, a["user"]["email"])
    done = seen[rejected]  # the same fields as the owner's own list
    assert (done["status"], done["new_version"], done["promoted"]) == ("rejected", kept, False)
    assert done["metrics"] == METRICS and done["version_state"] == "kept"
    assert done["progress"] == {"step": 24, "total": 24, "loss": 1.2}
    assert seen[failed]["reason"] == "out of memory"
    own = (await api.get("/v1/training/jobs", headers=bearer(a["access_token"]))).json()["data"]
    assert {k: v for k, v in done.items() if k not in ("user_id", "user_email")} == next(
        j for j in own["items"] if j["id"] == rejected
    )
    # The user's own list is unchanged: b's job is not in a's.
    assert bs not in {j["id"] for j in own["items"]}

    # Filters: by owner, status and adapter.
    by_a = await api.get(JOBS, headers=as_admin, params={"user_id": user})
    assert [j["id"] for j in by_a.json()["data"]["items"]] == [running, rejected, failed]
    only_failed = await api.get(JOBS, headers=as_admin,
                                params={"user_id": user, "status": "failed"})  # fmt: skip
    assert [j["id"] for j in only_failed.json()["data"]["items"]] == [failed]
    by_adapter = await api.get(JOBS, headers=as_admin, params={"adapter_id": other.adapter_id})
    assert [j["id"] for j in by_adapter.json()["data"]["items"]] == [bs]
    succeeded = await _walk(api, JOBS, as_admin, {bs}, status="succeeded")
    assert bs in succeeded and {j["status"] for j in succeeded.values()} == {"succeeded"}

    # Pages.
    first = (await api.get(JOBS, headers=as_admin,
                           params={"user_id": user, "limit": 2})).json()["data"]  # fmt: skip
    assert [j["id"] for j in first["items"]] == [running, rejected] and first["next_cursor"]
    rest = (await api.get(JOBS, headers=as_admin, params={"user_id": user, "limit": 2,
                                                          "cursor": first["next_cursor"]})
            ).json()["data"]  # fmt: skip
    assert [j["id"] for j in rest["items"]] == [failed] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    "path, params",
    [
        (JOBS, {"status": "exploded"}),
        (JOBS, {"user_id": "not-a-uuid"}),
        (JOBS, {"adapter_id": "1234"}),
        (JOBS, {"limit": "0"}),
        (JOBS, {"limit": "101"}),
        (JOBS, {"cursor": "not-a-cursor"}),
        (JOBS, {"owner": "me"}),
        (ADAPTERS, {"type": "weird"}),
        (ADAPTERS, {"user_id": "x" * 36}),
        (ADAPTERS, {"limit": "many"}),
        (ADAPTERS, {"cursor": "bm90IGpzb24="}),
        (ADAPTERS, {"owner": "me"}),
    ],
)
async def test_bad_query_parameters_are_a_validation_error(api, settings, path, params) -> None:
    admin = await _admin(api, settings)
    answer = await api.get(path, headers=bearer(admin["access_token"]), params=params)
    assert answer.status_code == 400, (params, answer.text)
    body = answer.json()
    assert body["status"] == "error" and body["error"]["code"] == "validation_error"
    assert body["request_id"]


async def test_an_admin_reads_any_adapter_and_acts_on_its_versions(api, adapters, settings) -> None:
    admin, a = await _admin(api, settings), await sign_up(api)
    as_admin, user = bearer(admin["access_token"]), a["user"]["id"]
    adapter_id, kept, job_id = await _adapter_with_candidate(adapters, user)
    style = await adapters.publish(user, 213, kind="style")
    admins = await adapters.publish(admin["user"]["id"], 214)

    # All adapters, with their owners; a's private ones included.
    seen = await _walk(api, ADAPTERS, as_admin, {adapter_id, style.adapter_id,
                                                 admins.adapter_id})  # fmt: skip
    mine = seen[adapter_id]
    assert (mine["owner"], mine["visibility"], mine["adapter_type"]) == ("private", "private",
                                                                         "skill")  # fmt: skip
    assert (mine["owner_user_id"], mine["owner_email"]) == (user, a["user"]["email"])
    assert (mine["version"], mine["latest_version"], mine["version_count"]) == (2, kept, 3)
    assert seen[admins.adapter_id]["owner"] == "me"
    # Filters by owner and kind; pages.
    by_a = (await api.get(ADAPTERS, headers=as_admin, params={"user_id": user})).json()["data"]
    assert {i["id"] for i in by_a["items"]} == {adapter_id, style.adapter_id}
    assert {i["owner_user_id"] for i in by_a["items"]} == {user}
    styles = await api.get(ADAPTERS, headers=as_admin, params={"user_id": user, "type": "style"})
    assert [i["id"] for i in styles.json()["data"]["items"]] == [style.adapter_id]
    first = (await api.get(ADAPTERS, headers=as_admin,
                           params={"user_id": user, "limit": 1})).json()["data"]  # fmt: skip
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = (await api.get(ADAPTERS, headers=as_admin, params={"user_id": user, "limit": 1,
                                                              "cursor": first["next_cursor"]})
            ).json()["data"]  # fmt: skip
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {first["items"][0]["id"], rest["items"][0]["id"]} == {adapter_id, style.adapter_id}

    # One adapter with its versions: the job that made each is shown to the admin.
    read = await api.get(f"{ADAPTERS}/{adapter_id}", headers=as_admin)
    assert read.status_code == 200, read.text
    detail = read.json()["data"]
    assert (detail["owner_user_id"], detail["owner_email"]) == (user, a["user"]["email"])
    numbers = [(v["version"], v["served"], v["candidate"]) for v in detail["versions"]["items"]]
    assert numbers == [(kept, False, True), (2, True, False), (1, False, False)]
    newest = detail["versions"]["items"][0]
    assert newest["job_id"] == job_id and newest["metrics"] == METRICS
    paged = (await api.get(f"{ADAPTERS}/{adapter_id}", headers=as_admin,
                           params={"limit": 2})).json()["data"]["versions"]  # fmt: skip
    assert [v["version"] for v in paged["items"]] == [kept, 2] and paged["next_cursor"]
    # The owner's route shows the same versions.
    own = (await api.get(f"/v1/adapters/{adapter_id}",
                         headers=bearer(a["access_token"]))).json()["data"]  # fmt: skip
    assert own["owner"] == "me" and "owner_email" not in own
    assert [v["version"] for v in own["versions"]["items"]] == [kept, 2, 1]

    # Acting on what it read: approve the candidate, then discard the old version.
    approved = await api.post(f"{ADAPTERS}/{adapter_id}/versions/{kept}/approve", headers=as_admin)
    assert approved.status_code == 200, approved.text
    gone = await api.delete(f"{ADAPTERS}/{adapter_id}/versions/1", headers=as_admin)
    assert gone.status_code == 200, gone.text
    after = (await api.get(f"{ADAPTERS}/{adapter_id}", headers=as_admin)).json()["data"]
    assert after["version"] == kept
    assert [(v["version"], v["served"]) for v in after["versions"]["items"]] == [
        (kept, True), (2, False)
    ]  # fmt: skip

    # Unknown and malformed ids: 404; a bad versions cursor: 400.
    unknown = await api.get(f"{ADAPTERS}/00000000-0000-4000-8000-000000000000", headers=as_admin)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert (await api.get(f"{ADAPTERS}/nope", headers=as_admin)).status_code == 404
    bad = await api.get(f"{ADAPTERS}/{adapter_id}", headers=as_admin,
                        params={"cursor": "not-a-cursor"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
