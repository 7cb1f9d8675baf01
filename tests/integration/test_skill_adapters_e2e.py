"""A skill adapter from feedback to the router, on the real stack (issue 20 item 4): a user's
liked answers on two clearly different topics are clustered by the cluster function (a real
ClusterQueue message through its /events, MiniLM embeddings); each cluster that passes the
size and positive thresholds gets a `system_llm` proposal of a skill adapter (pending, valid);
an admin approves one and asks for its apply; the apply-patch function creates the weightless
skill bound to the cluster and queues its training job; the train function trains it (the real
SmolLM2, 4 steps) and publishes a version with weights; the user's next turn near the cluster
is routed to it by the seeded policy's `cluster_near_skill` rule. New feedback in the cluster
then queues its retraining after the next cluster run, and a merge makes the surviving skill
train on the merged one's cluster from then on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from functions.train import job as train_job
from shared.domain.expressions.functions import cosine_similarity
from shared.domain.preferences import skill_jobs, store
from shared.domain.preferences.schedule import TrainingPolicy
from shared.services import Services
from tests.integration.configkit import admin, approved_and_applying, deliver
from tests.integration.conftest import gateway_client
from tests.integration.prefkit import answered, fetch_all, fetch_one, prefs_settings, signed_user
from tests.integration.test_clusters import ASTRONOMY, COOKING, _run
from tests.integration.test_skill_training import TRAIN_SETTINGS, _SessionModel

pytestmark = pytest.mark.integration
STEPS = 4
SKILLS = {"training_threshold_events": 100_000, "skill_min_size": 8, "skill_min_positive": 5,
          "skill_min_positive_share": 0.6, "skill_step_budget": STEPS,
          "skill_retrain_events": 1, "rate_configops_per_hour": 1000}  # fmt: skip
# A habit in every liked cooking answer: what the skill learns.
COOKING_ANSWER = "Chef's note: {}"


@pytest.fixture(scope="module")
async def e2e(settings, service, migrated):
    made = Services.from_settings(prefs_settings(settings, service, **SKILLS, **TRAIN_SETTINGS))
    yield made
    await made.aclose()


async def _likes(services: Services, user_id: str, questions: list[str], answer: str) -> None:
    vectors = await services.llm.embed(questions)
    async with services.db.connection() as conn:
        for question, vector in zip(questions, vectors, strict=True):
            conversation_id, _, message_id = await answered(
                conn, user_id, question=question, answer=answer.format(question.lower())
            )
            rated = await store.rated_message(conn, user_id, conversation_id, message_id)
            await store.upsert(
                conn, user_id, rated, signal="like", score=1.0, corrected_text=None,
                notes=None, embedding=vector, filtered_reason=None,
            )  # fmt: skip
        await conn.commit()


async def _proposals(services: Services, user_id: str) -> dict[str, dict[str, Any]]:
    """The system's skill proposals for the user's clusters, by the cluster's keywords."""
    rows = await fetch_all(
        services,
        "SELECT p.id, p.status, p.proposer, p.validation, p.meta->>'cluster_id', c.keywords"
        " FROM config_patch p JOIN semantic_cluster c ON c.id::text = p.meta->>'cluster_id'"
        " WHERE c.user_id = %s AND p.kind = 'adapter.lora' ORDER BY p.id",
        user_id,
    )  # fmt: skip
    return {
        ("cooking" if {"pasta", "oven", "bread", "bake"} & set(keywords) else "astronomy"): {
            "id": pid, "status": status, "proposer": proposer, "validation": validation,
            "cluster_id": cluster_id,
        }
        for pid, status, proposer, validation, cluster_id, keywords in rows
    }  # fmt: skip


@pytest.mark.timeout(900)
async def test_a_qualifying_cluster_becomes_a_trained_skill_the_router_uses(e2e, lm) -> None:
    async with gateway_client(e2e.settings, e2e) as api:
        user_id, headers = await signed_user(api)
        await _likes(e2e, user_id, COOKING, COOKING_ANSWER)
        await _likes(e2e, user_id, ASTRONOMY, "A star fact: {}")
        await _run(e2e, user_id)  # clusters, then proposes a skill per qualifying cluster

        proposed = await _proposals(e2e, user_id)
        assert set(proposed) == {"cooking", "astronomy"}, proposed
        for patch in proposed.values():
            assert (patch["status"], patch["proposer"]) == ("pending", "system_llm"), patch
            assert patch["validation"] == {"ok": True, "problems": []}
        await _run(e2e, user_id)  # again: nothing new is proposed while those wait
        assert (await _proposals(e2e, user_id)).keys() == proposed.keys()
        assert (
            len(
                await fetch_all(
                    e2e,
                    "SELECT 1 FROM config_patch WHERE meta->>'cluster_id' = ANY(%s)",
                    [p["cluster_id"] for p in proposed.values()],
                )
            )
            == 2
        )

        # The admin approves the cooking skill; the apply-patch function creates it.
        admin_headers = await admin(api, e2e.settings)
        cooking = proposed["cooking"]
        await approved_and_applying(api, admin_headers, cooking["id"])
        await deliver(e2e, cooking["id"])
        applied = (await api.get(f"/v1/config/patches/{cooking['id']}",
                                 headers=admin_headers)).json()["data"]  # fmt: skip
        assert applied["status"] == "applied", applied
        skill_id, job_id = applied["artifact_id"], applied["meta"]["training_job_id"]
        version, schema = await fetch_one(
            e2e, "SELECT version, schema FROM artifact WHERE id = %s", skill_id
        )
        assert (version, schema["adapter_type"], schema["cluster_id"]) == (
            1, "skill", cooking["cluster_id"])  # fmt: skip
        assert not schema.get("fs_dir"), "a new skill has no weights: B is zero until trained"
        queued = await fetch_one(
            e2e, "SELECT status, kind, cluster_ids::text[], user_id::text FROM training_job"
            " WHERE id = %s", job_id,
        )  # fmt: skip
        assert queued == ("queued", "skill", [cooking["cluster_id"]], user_id)

        # The train function trains it on the cluster's events and publishes weights.
        outcome = await train_job.run(job_id, services=e2e, model=_SessionModel(lm))
        assert outcome.status == "succeeded", outcome
        if not outcome.promoted:  # kept as a candidate: the admin serves it (a product path)
            served = await api.post(
                f"/v1/admin/adapters/{skill_id}/versions/{outcome.version}/approve",
                headers=admin_headers,
            )
            assert served.status_code == 200, served.text
        version, schema = await fetch_one(
            e2e, "SELECT version, schema FROM artifact WHERE id = %s", skill_id
        )
        assert version == outcome.version == 2 and schema["fs_dir"] and schema["checksum"]
        assert schema["cluster_id"] == cooking["cluster_id"] and schema["adapter_type"] == "skill"
        manifest = await fetch_one(e2e, "SELECT num_events, meta->'metrics'->'train'->>'steps',"
                                   " meta->'metrics'->>'seconds' FROM training_job WHERE id = %s",
                                   job_id)  # fmt: skip
        assert manifest[0] == len(COOKING) and int(manifest[1]) == STEPS
        print(
            f"\nskill job: {manifest[0]} events, {STEPS} steps, {float(manifest[2]):.1f} s,"
            f" promoted {outcome.promoted}"
        )  # shown with -s

        # "Your topics" shows the skill learned for the topic (and none for the other yet).
        topics = (await api.get("/v1/clusters", headers=headers)).json()["data"]["items"]
        skills = {t["id"]: t["skill"] for t in topics}
        expected = {"adapter_id": skill_id, "name": applied["new_name"], "version": 2,
                    "status": "active", "has_weights": True}  # fmt: skip
        assert skills[cooking["cluster_id"]] == expected
        assert skills[proposed["astronomy"]["cluster_id"]] is None

        # The next turn on the topic is routed to the skill (cosine to its centroid > 0.6).
        centroid = await fetch_one(
            e2e, "SELECT centroid_vec::text FROM adapter_router_state WHERE artifact_id = %s",
            skill_id,
        )  # fmt: skip
        vectors = await e2e.llm.embed(COOKING)
        near = [cosine_similarity(v, json.loads(centroid[0])) for v in vectors]
        question = COOKING[max(range(len(near)), key=near.__getitem__)]
        assert max(near) > 0.6, near
        turn = await api.post("/v1/chat", headers=headers,
                              json={"message": {"content": question}})  # fmt: skip
        assert turn.status_code == 200, turn.text
        answer = turn.json()["data"]
        routed = [a for a in answer["trace"]["router"]["adapters"] if a["id"] == skill_id]
        assert routed and routed[0]["version"] == 2 and routed[0]["weight"] > 0, answer["trace"]
        assert any(a["id"] == skill_id and a["how"] == "lora" for a in answer["adapters"])
        # A turn far from the topic is not.
        far = await api.post("/v1/chat", headers=headers,
                             json={"message": {"content": ASTRONOMY[0]}})  # fmt: skip
        assert skill_id not in {a["id"] for a in far.json()["data"]["trace"]["router"]["adapters"]}

        # New feedback in the cluster (the questions nearest its centroid, liked again in new
        # conversations): the next cluster run queues the skill's retraining. (A re-run may
        # move an event between neighbouring clusters: one new event is the threshold here.)
        nearest = await fetch_all(
            e2e, "SELECT e.context_text FROM cluster_event ce JOIN preference_event e"
            " ON e.id = ce.event_id WHERE ce.cluster_id = %s ORDER BY ce.similarity DESC LIMIT 3",
            cooking["cluster_id"],
        )  # fmt: skip
        await _likes(e2e, user_id, [row[0] for row in nearest], COOKING_ANSWER)
        await _run(e2e, user_id)
        again = await fetch_all(
            e2e, "SELECT status, meta->>'trigger', cluster_ids::text[] FROM training_job"
            " WHERE adapter_id = %s AND id <> %s", skill_id, job_id,
        )  # fmt: skip
        assert len(again) == 1 and again[0][0] == "queued", again
        assert again[0][1].endswith("new events in its clusters"), again
        assert again[0][2] == [cooking["cluster_id"]]

        # The trained version (its job, metrics and config in its schema) can be switched off.
        off = await api.post("/v1/config/patches", headers=headers, json={
            "artifact_id": skill_id, "base_version": 2,
            "patch": [{"op": "add", "path": "/status", "value": "disabled"}]})  # fmt: skip
        assert off.status_code == 201, off.text
        assert off.json()["data"]["validation"] == {"ok": True, "problems": []}, off.text


async def test_a_merged_skill_s_cluster_stays_in_the_survivor_s_training(e2e) -> None:
    """`clusters_of` follows `merged_into`; a queued job is widened to them, not duplicated."""
    async with e2e.db.connection() as conn, conn.transaction():
        clusters = [
            (await (await conn.execute(
                "INSERT INTO semantic_cluster (user_id, scope, centroid, size)"
                " VALUES (NULL, 'global', %s::vector, 1) RETURNING id::text",
                (str([1.0] + [0.0] * 383),))).fetchone())[0]
            for _ in range(2)
        ]  # fmt: skip
        ids = []
        for cluster_id, extra in zip(clusters, ({}, {}), strict=True):
            schema = {"kind": "adapter.lora", "adapter_type": "skill", "cluster_id": cluster_id,
                      "status": "active", **extra}  # fmt: skip
            row = await (await conn.execute(
                "INSERT INTO artifact (owner_user_id, type, name, schema, version, visibility)"
                " VALUES (NULL, 'adapter.lora', %s, %s, 1, 'global') RETURNING id::text",
                (f"skill-{cluster_id[:8]}", Jsonb(schema)))).fetchone()  # fmt: skip
            ids.append(row[0])
        survivor, merged = ids
        policy = TrainingPolicy.from_settings(e2e.settings)
        job_id = await skill_jobs.enqueue(
            conn,
            adapter_id=survivor,
            cluster_ids=[clusters[0]],
            reason="new skill",
            policy=policy,
            step_budget=STEPS,
        )
        await conn.execute(
            "UPDATE artifact SET schema = schema || %s WHERE id = %s",
            (Jsonb({"status": "disabled", "merged_into": survivor}), merged),
        )
        assert await skill_jobs.clusters_of(conn, survivor) == clusters
        widened = await skill_jobs.retrain(conn, adapter_id=survivor, reason="merge",
                                           policy=policy, step_budget=STEPS)  # fmt: skip
        assert widened == job_id
        row = await (
            await conn.execute(
                "SELECT cluster_ids::text[] FROM training_job WHERE id = %s", (job_id,)
            )
        ).fetchone()
        assert sorted(row[0]) == sorted(clusters)
        # A running job is not widened: the next retraining covers the merged cluster.
        await conn.execute("UPDATE training_job SET status = 'running' WHERE id = %s", (job_id,))
        assert (
            await skill_jobs.retrain(
                conn, adapter_id=survivor, reason="merge", policy=policy, step_budget=STEPS
            )
            is None
        )
        await conn.execute("UPDATE training_job SET status = 'cancelled' WHERE id = %s",
                           (job_id,))  # fmt: skip
