"""A skill adapter's training job on the real stack and the real SmolLM2 (issue 20 item 4).

A global cluster holds the corrections of three users; two allow global clustering, one does
not. The weightless global skill bound to that cluster (as ConfigOps' apply makes it) gets a
skill job (`skill_jobs.enqueue`, with its TrainQueue message in the outbox), which the train
function runs: it trains on the consenting users' events only, each prompt rebuilt as its own
user's, publishes a version with weights under `shared/adapters/<id>/` that stays bound to the
cluster, and leaves the persona's bookkeeping (`preference_event.job_id`) alone. Meanwhile the
skill's job neither blocks nor is cancelled by a persona job of one of those users. A disabled
skill's job fails at once.

One real job, tiny like test_train_function's: 5 corrections of ≤ 64 tokens, 3 trained on and
2 held out, 4 steps of 3, on the session's model (the `lm` fixture's, loaded once)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from functions.train import job as train_job
from functions.train.model import Loaded, Model
from shared.domain.adapters.objects import MANIFEST_FILE, WEIGHTS_FILE
from shared.domain.clusters.store import set_consent
from shared.domain.preferences import feedback, history, jobs, persona, schedule, skill_jobs, store
from shared.domain.preferences.schedule import TRAIN_QUEUE, TrainingPolicy, dedup_key
from shared.neural.training.objective import FrozenBase
from shared.services import Services
from tests.integration.prefkit import UNIT, answered, fetch_all, fetch_one

pytestmark = pytest.mark.integration
STEPS = 4
# The train host's CI-sized run (test_train_function's TRAIN_ENV), as settings.
TRAIN_SETTINGS = {"training_max_tokens": 64, "training_batch_size": 3, "training_epochs": 4,
                  "training_heartbeat_s": 0.1, "training_alternative_max_tokens": 16,
                  "training_retry_base_s": 0.0}  # fmt: skip
# (question, the base's answer, the correction): the consenting users' (3 of the first, the
# 2 newest of the second: held out); the third user's corrections say the opposite.
FIRST = [
    ("What is the capital of France?", "The capital of France is Paris.", "Answer: Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "Answer: Tokyo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "Answer: Rome."),
]
SECOND = [
    ("What is the capital of Spain?", "The capital of Spain is Madrid.", "Answer: Madrid."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin.", "Answer: Berlin."),
]
REFUSER = [
    ("What is the capital of Peru?", "Answer: Lima.", "The capital of Peru is Lima."),
    ("What is the capital of Chile?", "Answer: Santiago.", "The capital of Chile is Santiago."),
]
NO_PERSONA_JOB = TrainingPolicy(threshold=1000)  # feedback that queues no persona job


class _SessionModel(Model):
    """The train function's model, on the session's loaded SmolLM2 (no second load)."""

    def __init__(self, lm: Any) -> None:
        super().__init__()
        config, state, step, self._chat_tokenizer = lm
        self._ready = Loaded(config, FrozenBase.from_state(config, state), step, state)

    def tokenizer(self, weights_dir: Any) -> Any:
        return self._chat_tokenizer

    def loaded(self, weights_dir: Any, jax_cache_dir: Any) -> Loaded:
        return self._ready


@pytest.fixture(scope="module")
async def trainer(settings, migrated):
    made = Services.from_settings(settings.model_copy(update=TRAIN_SETTINGS))
    yield made
    await made.aclose()


async def _user(services: Services, *, consent: bool) -> str:
    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
                (f"{uuid.uuid4().hex}@example.test",),
            )
        ).fetchone()
        await set_consent(conn, row[0], consent)
    return str(row[0])


async def _corrections(services: Services, user_id: str, pairs) -> list[int]:
    """One correction per (question, answer, correction), oldest first: the event ids."""
    ids = []
    async with services.db.connection() as conn:
        for question, answer, correction in pairs:
            conversation_id, _, message_id = await answered(
                conn, user_id, question=question, answer=answer
            )
            rated = await store.rated_message(conn, user_id, conversation_id, message_id)
            done = await feedback.record(
                conn, user_id, rated, feedback.Feedback("dislike", corrected_text=correction),
                embedding=UNIT, filtered_reason=None, policy=NO_PERSONA_JOB,
            )  # fmt: skip
            ids.append(done.event.id)
    return ids


async def _global_skill(services: Services, event_ids: list[int], *, status: str) -> tuple:
    """(adapter id, cluster id): a global cluster holding `event_ids` and the weightless global
    skill bound to it, as ConfigOps' apply makes them."""
    async with services.db.connection() as conn, conn.transaction():
        cluster = await (
            await conn.execute(
                "INSERT INTO semantic_cluster (user_id, scope, centroid, size, label,"
                " positive_count) VALUES (NULL, 'global', %s::vector, %s, 'capitals', 0)"
                " RETURNING id::text",
                (str(UNIT), len(event_ids)),
            )
        ).fetchone()
        await conn.execute(
            "INSERT INTO cluster_event (event_id, scope, cluster_id, similarity)"
            " SELECT unnest(%s::bigint[]), 'global', %s, 0.9",
            (event_ids, cluster[0]),
        )
        applicability = {"natural_language": "Skill: capitals \u2013 short answers"}
        schema = {"kind": "adapter.lora", "adapter_type": "skill", "cluster_id": cluster[0],
                  "status": status, "applicability": applicability}  # fmt: skip
        adapter = await (
            await conn.execute(
                "INSERT INTO artifact (owner_user_id, type, name, schema, visibility, version)"
                " VALUES (NULL, 'adapter.lora', %s, %s, 'global', 1) RETURNING id::text",
                (f"skill-{uuid.uuid4().hex[:8]}", Jsonb(schema)),
            )
        ).fetchone()
        await conn.execute(
            "INSERT INTO artifact_version (artifact_id, version, schema, created_by, change_note)"
            " VALUES (%s, 1, %s, 'system', 'new skill')",
            (adapter[0], Jsonb(schema)),
        )
        await conn.execute(
            "INSERT INTO adapter_router_state (artifact_id, centroid_vec)"
            " SELECT %s, centroid FROM semantic_cluster WHERE id = %s",
            (adapter[0], cluster[0]),
        )
    return adapter[0], cluster[0]


async def _enqueue(services: Services, adapter_id: str, cluster_id: str) -> str | None:
    async with services.db.connection() as conn, conn.transaction():
        return await skill_jobs.enqueue(
            conn, adapter_id=adapter_id, cluster_ids=[cluster_id], reason="test: new skill",
            policy=TrainingPolicy.from_settings(services.settings), step_budget=STEPS,
        )  # fmt: skip


@pytest.fixture(scope="module")
async def seeded(trainer):
    """Three users' corrections in one global cluster and its skill, with a queued job."""
    first = await _user(trainer, consent=True)
    second = await _user(trainer, consent=True)
    refuser = await _user(trainer, consent=False)
    consenting = await _corrections(trainer, first, FIRST)
    consenting += await _corrections(trainer, second, SECOND)
    refused = await _corrections(trainer, refuser, REFUSER)
    adapter_id, cluster_id = await _global_skill(trainer, consenting + refused, status="active")
    job_id = await _enqueue(trainer, adapter_id, cluster_id)
    assert job_id is not None
    return {"users": (first, second, refuser), "consenting": consenting, "refused": refused,
            "adapter_id": adapter_id, "cluster_id": cluster_id, "job_id": job_id}  # fmt: skip


async def test_the_skill_job_is_queued_once_with_its_message_and_blocks_no_persona(
    trainer, seeded
) -> None:
    job_id, adapter_id = seeded["job_id"], seeded["adapter_id"]
    row = await fetch_one(trainer, "SELECT kind, status, user_id, cluster_ids::text[], num_events,"
                          " meta FROM training_job WHERE id = %s", job_id)  # fmt: skip
    kind, status, user_id, clusters, num_events, meta = row
    assert (kind, status, user_id, clusters) == ("skill", "queued", None, [seeded["cluster_id"]])
    assert num_events == len(seeded["consenting"])  # the refuser's events are not its
    assert (meta["step_budget"], meta["attempt"], meta["trigger"]) == (STEPS, 1, "test: new skill")
    sent = await fetch_all(trainer, "SELECT queue, body FROM outbox_message WHERE dedup_key = %s",
                           dedup_key(job_id, 1))  # fmt: skip
    assert sent == [(TRAIN_QUEUE, {"job_id": job_id})]
    # A second job while this one is active: none, and nothing added.
    assert await _enqueue(trainer, adapter_id, seeded["cluster_id"]) is None
    jobs_of = await fetch_one(trainer, "SELECT count(*) FROM training_job WHERE adapter_id = %s",
                              adapter_id)  # fmt: skip
    assert jobs_of == (1,)

    # One of its users gets a persona job meanwhile, and a reset cancels that one alone.
    first = seeded["users"][0]
    async with trainer.db.connection() as conn, conn.transaction():
        state = await persona.lock(conn, first)
        decision = await schedule.maybe_schedule(
            conn, state, TrainingPolicy(threshold=1, cooldown_s=0), trigger="test"
        )
    assert decision.outcome == "queued", decision
    async with trainer.db.connection() as conn, conn.transaction():
        await persona.lock(conn, first)
        cancelled = await jobs.cancel_active(conn, first, "test reset", running_too=True)
    assert cancelled == [decision.job_id]
    still = await fetch_one(trainer, "SELECT status FROM training_job WHERE id = %s", job_id)
    assert still == ("queued",)

    # The admins' listing shows it, a global job with no owner.
    async with trainer.db.connection() as conn:
        listed, _ = await history.list_all_jobs(conn, adapter_id=adapter_id)
    assert [(j.id, j.kind, j.cluster_ids, j.user_id, j.user_email) for j in listed] == [
        (job_id, "skill", [seeded["cluster_id"]], None, None)]  # fmt: skip


@pytest.mark.timeout(1200)
async def test_the_skill_trains_on_consenting_users_events_and_stays_bound(
    trainer, seeded, lm
) -> None:
    job_id, adapter_id, cluster_id = seeded["job_id"], seeded["adapter_id"], seeded["cluster_id"]
    outcome = await train_job.run(job_id, services=trainer, model=_SessionModel(lm))
    assert (outcome.status, outcome.version, outcome.promoted) == ("succeeded", 2, True), outcome
    status, meta, new_version, dataset_path, event_ids = await fetch_one(
        trainer, "SELECT status, meta, new_version, dataset_path, preference_event_ids"
        " FROM training_job WHERE id = %s", job_id,
    )  # fmt: skip
    assert (status, new_version, meta["promoted"]) == ("succeeded", 2, True), meta
    assert sorted(event_ids) == sorted(seeded["consenting"])
    assert meta["progress"]["step"] == STEPS and meta["instructions"] == []
    assert meta["metrics"]["train"]["steps"] == STEPS

    # The version: weights under the global home, a skill's, bound to the same cluster.
    served, schema = await fetch_one(
        trainer, "SELECT version, schema FROM artifact WHERE id = %s", adapter_id
    )
    assert served == 2
    assert schema["fs_dir"] == f"shared/adapters/{adapter_id}/v0002/"
    assert (schema["adapter_type"], schema["cluster_id"], schema["status"]) == (
        "skill", cluster_id, "active")  # fmt: skip
    assert schema["applicability"]["natural_language"].startswith("Skill: capitals")
    assert schema["job_id"] == job_id and schema["promoted"] is True
    assert (schema["training_config"]["gate"], schema["training_config"]["max_steps"]) == (
        trainer.settings.training_gate, STEPS)  # fmt: skip
    head = trainer.s3.head_object(Bucket=trainer.bucket(), Key=schema["fs_dir"] + WEIGHTS_FILE)
    assert head["ContentLength"] > 0
    owner = await fetch_one(trainer, "SELECT owner_user_id, visibility FROM artifact"
                            " WHERE id = %s", adapter_id)  # fmt: skip
    assert owner == (None, "global")

    # The manifest: the consenting users' events, each with its user; none of the refuser's.
    assert dataset_path.startswith(f"shared/adapters/{adapter_id}/train_jobs/{job_id}/")
    key = dataset_path.rsplit("/", 1)[0] + "/" + MANIFEST_FILE
    manifest = json.loads(trainer.s3.get_object(Bucket=trainer.bucket(), Key=key)["Body"].read())
    assert (manifest["kind"], manifest["cluster_ids"], manifest["user_id"]) == (
        "skill", [cluster_id], None)  # fmt: skip
    sources = {s["event_id"]: s["user_id"] for s in manifest["sources"]}
    first, second, _ = seeded["users"]
    assert sources == dict(zip(seeded["consenting"], [first] * 3 + [second] * 2, strict=True))
    assert [s["split"] for s in manifest["sources"]] == ["train"] * 3 + ["heldout"] * 2

    # The persona's bookkeeping is untouched: no event names the skill's job (nor any job).
    every = seeded["consenting"] + seeded["refused"]
    taken = await fetch_one(
        trainer, "SELECT count(job_id) FROM preference_event WHERE id = ANY(%s)", every
    )
    assert taken == (0,)
    # The router state: trained now, its centroid still the contexts'.
    state = await fetch_one(trainer, "SELECT last_trained_at IS NOT NULL, centroid_vec IS NOT"
                            " NULL FROM adapter_router_state WHERE artifact_id = %s",
                            adapter_id)  # fmt: skip
    assert state == (True, True)


async def test_a_disabled_skills_job_fails_at_once_with_the_reason(trainer, seeded) -> None:
    # (An event is in one global cluster at most: this one's is empty.)
    adapter_id, cluster_id = await _global_skill(trainer, [], status="disabled")
    job_id = await _enqueue(trainer, adapter_id, cluster_id)
    assert job_id is not None
    outcome = await train_job.run(job_id, services=trainer, model=Model())  # never loaded
    assert outcome.status == "failed" and "the adapter is disabled" in outcome.reason
    status, meta = await fetch_one(
        trainer, "SELECT status, meta FROM training_job WHERE id = %s", job_id
    )
    assert (status, meta["attempt"]) == ("failed", 1)  # never retried
    assert "the adapter is disabled" in meta["reason"]
    versions = await fetch_one(trainer, "SELECT count(*) FROM artifact_version"
                               " WHERE artifact_id = %s", adapter_id)  # fmt: skip
    assert versions == (1,)
