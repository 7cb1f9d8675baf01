"""The train function on the real stack and the real SmolLM2 (issue 18, items 4 and 5).

End to end: corrections through the API → the job and its message in one transaction → the
outbox relay → TrainQueue → the dispatcher → the train function in its own host process →
a trained, evaluated and promoted persona version → that user's next turn is served with it
(its trace names the adapter and the version), and the corrections are more likely under it
than under the base. A job whose held-out events prefer what the base does is trained too, but
kept as a candidate. Failures run the function in this process: a store it cannot reach is a
transient failure (retried, then `failed` with the reason), a served version whose files fail
their checksum a permanent one; either way no event is lost. A job the user cancels while it
runs (a reset) stops and publishes nothing.

Two real jobs, tiny: 5 corrections of ≤ 64 tokens, 3 trained on and 2 held out, 4 steps of 3."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid

import httpx
import pytest
from psycopg.types.json import Jsonb

from functions.train.model import Loaded, base_answers
from infra.gateway.app import internal_app
from shared.domain.adapters.objects import DATASET_FILE, MANIFEST_FILE, TRAINING_CONFIG_FILE
from shared.domain.adapters.registry import AdapterFiles, publish
from shared.domain.preferences.schedule import TRAIN_QUEUE
from shared.domain.tools.builtins import DEFAULT_SYSTEM_PROMPT
from shared.neural import peft
from shared.neural.config import LlamaConfig
from shared.neural.lora import random_lora
from shared.neural.tokenizer import ChatMessage
from shared.neural.training import PREFERRED, TrainingConfig, TrainingSample, target_logprobs
from shared.neural.training.objective import FrozenBase
from shared.services import Services
from tests.helpers import free_port, project_process
from tests.integration.conftest import gateway_client
from tests.integration.prefkit import answered, fetch_one, prefs_settings, signed_user

pytestmark = pytest.mark.integration
THRESHOLD = 5
STEPS = 4
# The train host's CI-sized run: samples of ≤ 64 tokens, batches of 3, at most STEPS steps.
TRAIN_ENV = {"TRAINING_MAX_TOKENS": "64", "TRAINING_BATCH_SIZE": "3", "TRAINING_EPOCHS": "4",
             "TRAINING_HEARTBEAT_S": "0.1", "TRAINING_ALTERNATIVE_MAX_TOKENS": "16"}  # fmt: skip
# (question, the base's answer, the user's correction): a format habit the base lacks. The
# last two are the newest, so they are held out.
HABIT = [
    ("What is the capital of France?", "The capital of France is Paris.", "Answer: Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "Answer: Tokyo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "Answer: Rome."),
    ("What is the capital of Spain?", "The capital of Spain is Madrid.", "Answer: Madrid."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin.", "Answer: Berlin."),
]
# The same three to train on, but the held-out two correct the habit back to the base's
# sentences: a version that learned the habit prefers what these corrections replaced.
REVERSED = [*HABIT[:3], *[(q, correction, answer) for q, answer, correction in HABIT[3:]]]


def _settings(settings, service, **overrides):
    """What this module's feedback is scheduled with (the step budget goes into the job)."""
    return prefs_settings(settings, service, **{
        "training_threshold_events": THRESHOLD, "training_cooldown_s": 0,
        "training_step_budget": STEPS, "training_tier_delay_s": {"free": 0},
        "training_retry_base_s": 0.0, **overrides,
    })  # fmt: skip


@pytest.fixture(scope="module")
async def prefs(settings, service, migrated):
    made = Services.from_settings(_settings(settings, service))
    yield made
    await made.aclose()


@pytest.fixture
async def api(prefs):
    async with gateway_client(prefs.settings, prefs) as client:
        yield client


async def _correct(api, prefs, user_id, headers, pairs) -> list[dict]:
    """One correction per (question, answer, correction), oldest first, one at a time."""
    sent = []
    for question, answer, correction in pairs:
        async with prefs.db.connection() as conn:
            conversation_id, _, message_id = await answered(
                conn, user_id, question=question, answer=answer
            )
        response = await api.post("/v1/preferences", headers=headers, json={
            "conversation_id": conversation_id, "message_id": message_id,
            "explicit_signal": "dislike", "corrected_text": correction,
        })  # fmt: skip
        assert response.status_code == 201, response.text
        sent.append(response.json()["data"])
    return sent


async def _job(prefs, job_id: str):
    return await fetch_one(
        prefs, "SELECT status, meta, new_version, loss, dataset_path, num_events"
        " FROM training_job WHERE id = %s", job_id,
    )  # fmt: skip


async def _ended(prefs, job_id: str, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = await _job(prefs, job_id)
        if row[0] not in ("queued", "running"):
            return row
        await asyncio.sleep(1)
    raise AssertionError(f"job {job_id} still {row[0]} ({row[1].get('progress')})")


def _events(job_id: str) -> dict:
    """An SQS batch of one TrainQueue message, as the dispatcher posts it."""
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "local", "body": json.dumps(
            {"job_id": job_id}), "attributes": {"ApproximateReceiveCount": "1"},
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:local-train",
    }]}  # fmt: skip


async def _run_here(services: Services, job_id: str) -> None:
    """The train function in this process, on `services`."""
    app = internal_app(services.settings, services=services, only="TrainFunction")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://train") as client:
        answer = await client.post("/functions/TrainFunction/events", json=_events(job_id))
    assert answer.status_code == 200 and answer.json() == {"batchItemFailures": []}, answer.text


async def _queued_job(api, prefs, pairs=HABIT) -> tuple[str, str, str, list[dict], dict]:
    """(user id, job id, persona id, the feedback sent, the user's headers)."""
    user_id, headers = await signed_user(api)
    sent = await _correct(api, prefs, user_id, headers, pairs)
    assert [s["training"]["outcome"] for s in sent][-1] == "queued"
    return user_id, sent[-1]["training"]["job_id"], sent[0]["adapter_id"], sent, headers


# --- failures: the function in this process (before any train host of this module runs) ---


async def test_a_store_it_cannot_reach_retries_the_job_then_fails_it_keeping_every_event(
    api, prefs, settings, service
) -> None:
    _, job_id, _, sent, _ = await _queued_job(api, prefs)
    broken = Services.from_settings(_settings(
        settings, service, s3_endpoint_url=f"http://127.0.0.1:{free_port()}"))  # fmt: skip
    try:
        for attempt in (1, 2, 3):
            await _run_here(broken, job_id)
            status, meta, *_ = await _job(prefs, job_id)
            assert meta["errors"][-1]["attempt"] == attempt
            assert "EndpointConnectionError" in meta["errors"][-1]["reason"], meta["errors"]
            if attempt < 3:  # retried: queued again, its next message in the outbox
                assert (status, meta["attempt"]) == ("queued", attempt + 1)
                keys = await fetch_one(prefs, "SELECT array_agg(dedup_key ORDER BY id) FROM"
                                       " outbox_message WHERE queue = %s AND body->>'job_id' = %s",
                                       TRAIN_QUEUE, job_id)  # fmt: skip
                assert keys[0][-1] == f"train:{job_id}:{attempt + 1}"
    finally:
        await broken.aclose()
    assert status == "failed" and "EndpointConnectionError" in meta["reason"]
    # Every event is still there, free for the next job.
    ids = [s["preference"]["id"] for s in sent]
    kept = await fetch_one(prefs, "SELECT count(*), count(job_id) FROM preference_event"
                           " WHERE id = ANY(%s)", ids)  # fmt: skip
    assert kept == (THRESHOLD, 0)


async def test_a_served_version_whose_files_fail_their_checksum_fails_the_job_at_once(
    api, prefs
) -> None:
    user_id, job_id, persona_id, sent, _ = await _queued_job(api, prefs)
    # The persona serves a weight version whose recorded checksum is not its files'.
    weights = random_lora(LlamaConfig(), rank=4, alpha=8, seed=3, scale=0.1)
    files, _ = peft.dump_with_checksum(weights)
    record = await publish(
        prefs.db, prefs.s3, prefs.bucket(), AdapterFiles(files, "sha256:" + "0" * 64),
        owner_user_id=user_id, name="persona", adapter_id=persona_id,
    )  # fmt: skip
    assert record.version == 2
    await _run_here(prefs, job_id)
    status, meta, new_version, *_ = await _job(prefs, job_id)
    assert (status, meta["attempt"], new_version) == ("failed", 1, None)  # never retried
    assert "do not match their checksum" in meta["reason"]
    ids = [s["preference"]["id"] for s in sent]
    kept = await fetch_one(prefs, "SELECT count(*), count(job_id) FROM preference_event"
                           " WHERE id = ANY(%s)", ids)  # fmt: skip
    assert kept == (THRESHOLD, 0)
    served = await fetch_one(prefs, "SELECT version FROM artifact WHERE id = %s", persona_id)
    assert served == (2,)


class _ResetWhileWriting:
    """The real S3 client, except that writing a job's dataset first resets the user's model
    through the API (on the test's loop), as a reset made while the job runs would."""

    def __init__(self, s3, loop, reset) -> None:
        self.s3, self.loop, self.reset = s3, loop, reset

    def __getattr__(self, name):
        return getattr(self.s3, name)

    def put_object(self, **kwargs):
        if kwargs["Key"].endswith(DATASET_FILE):
            asyncio.run_coroutine_threadsafe(self.reset(), self.loop).result(timeout=60)
        return self.s3.put_object(**kwargs)


async def test_a_job_cancelled_while_it_runs_stops_and_serves_nothing(api, prefs) -> None:
    _, job_id, persona_id, sent, headers = await _queued_job(api, prefs)

    async def reset() -> None:
        done = await api.post("/v1/me/personalization/reset", headers=headers, json={})
        assert done.status_code == 200, done.text

    s3 = _ResetWhileWriting(prefs.s3, asyncio.get_running_loop(), reset)
    await _run_here(dataclasses.replace(prefs, s3=s3), job_id)
    status, meta, new_version, *_ = await _job(prefs, job_id)
    assert (status, meta["reason"], new_version) == ("cancelled", "model reset to the base", None)
    assert "progress" not in meta  # it stopped at its first progress write
    versions = await fetch_one(
        prefs, "SELECT count(*) FROM artifact_version WHERE artifact_id = %s", persona_id
    )
    assert versions == (1,)  # nothing published
    ids = [s["preference"]["id"] for s in sent]
    kept = await fetch_one(prefs, "SELECT count(*), count(job_id) FROM preference_event"
                           " WHERE id = ANY(%s)", ids)  # fmt: skip
    assert kept == (THRESHOLD, 0)


def test_a_held_out_like_is_compared_with_the_bases_own_greedy_answer(lm) -> None:
    config, state, step, tokenizer = lm
    loaded = Loaded(config, FrozenBase.from_state(config, state), step, state)
    prompt = tokenizer.encode_chat([ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
                                    ChatMessage("user", HABIT[0][0])])  # fmt: skip
    # Padded to a batch of 4: the same answer in every row it was asked for.
    answers = base_answers(loaded, tokenizer, [prompt] * 3, max_new_tokens=16)
    assert answers == ["The capital of France is Paris."] * 3
    # An answer that does not end within the cap is no pair (it would be scored as ending).
    assert base_answers(loaded, tokenizer, [prompt], max_new_tokens=4) == [None]


# --- end to end: the pipeline, with the train function in its own host ------------------------


@pytest.fixture(scope="module")
async def pipeline(prefs, tmp_path_factory):
    """The internal host, the train function's host and the dispatcher, as `make run` has
    them. Jobs other modules left queued are cancelled first: this module's train host would
    otherwise train them too."""
    async with prefs.db.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE training_job SET status = 'cancelled', finished_at = now(),"
            " meta = meta || %s WHERE status = 'queued'",
            (Jsonb({"reason": "cancelled by test_train_function's set-up"}),),
        )
    logs = tmp_path_factory.mktemp("train")
    internal = free_port()
    train_port = prefs.settings.functions_host_ports["train"]
    env = {"FUNCTIONS_INTERNAL_PORT": str(internal), "DISPATCHER_WAIT_S": "1",
           "OUTBOX_RELAY_INTERVAL_S": "0.3", "LOG_LEVEL": "INFO", **TRAIN_ENV}  # fmt: skip
    with (
        project_process(["-m", "infra.gateway", "--internal"], env=env,
                        ready_url=f"http://127.0.0.1:{internal}", log_path=logs / "internal.log"),
        project_process(["-m", "infra.gateway", "--internal", "--only", "TrainFunction"],
                        env=env, ready_url=f"http://127.0.0.1:{train_port}",
                        log_path=logs / "train.log") as train_host,
        project_process(["-m", "infra.dispatcher"], env=env, log_path=logs / "dispatcher.log"),
    ):  # fmt: skip
        yield train_host.pid


@pytest.fixture(scope="module")
async def trained(prefs, pipeline):
    """Two users' jobs through the pipeline, one after the other on the train host: one that
    learns the habit its held-out events show, one whose held-out events reverse it."""
    async with gateway_client(prefs.settings, prefs) as api:
        learner = await _queued_job(api, prefs, HABIT)
        reverser = await _queued_job(api, prefs, REVERSED)
    started = time.monotonic()
    first = await _ended(prefs, learner[1])
    seconds = time.monotonic() - started
    second = await _ended(prefs, reverser[1])
    print(
        f"\ntrain job: {THRESHOLD} events, {first[1]['metrics']['train']['steps']} steps,"
        f" {seconds:.0f} s from queued to succeeded"
    )  # shown with -s
    return {"learner": (*learner, first), "reverser": (*reverser, second)}


def test_the_train_host_is_niced_and_kept_to_its_cores(prefs, pipeline) -> None:
    assert os.getpriority(os.PRIO_PROCESS, pipeline) == prefs.settings.functions_host_nice
    cores = len(os.sched_getaffinity(0))
    assert len(os.sched_getaffinity(pipeline)) == min(cores, prefs.settings.functions_host_cpus)


@pytest.mark.timeout(1200)
async def test_feedback_trains_a_version_that_is_promoted_and_served_on_the_next_turn(
    api, prefs, trained, lm
) -> None:
    _, job_id, persona_id, sent, headers, job = trained["learner"]
    status, meta, new_version, loss, dataset_path, num_events = job
    assert status == "succeeded", meta
    assert (meta["promoted"], new_version, meta["version"], num_events) == (
        True, 2, 2, THRESHOLD), meta  # fmt: skip
    # Progress was written as it ran: every step, the last one at the end.
    assert meta["progress"]["step"] == meta["progress"]["total"] == STEPS
    assert len(meta["losses"]) == STEPS and loss == meta["losses"][-1]
    heldout = meta["metrics"]["heldout"]
    assert heldout["events"] == 2 and heldout["current_version"] == 1
    assert heldout["new"]["loss"] < heldout["current"]["loss"]
    assert heldout["new"]["aligned"] >= heldout["current"]["aligned"]

    # The pointer names version 2; the version row carries its job, metrics and config.
    served, schema = await fetch_one(prefs, "SELECT version, schema FROM artifact WHERE id = %s",
                                     persona_id)  # fmt: skip
    assert served == 2 and schema["promoted"] is True and schema["job_id"] == job_id
    assert schema["metrics"] == meta["metrics"]
    config = schema["training_config"]
    assert (config["gate"], config["max_steps"], config["max_tokens"]) == (0.5, STEPS, 64)
    # The files: PEFT's two (checksummed) and the training config.
    prefix = schema["fs_dir"]
    files = {name: prefs.s3.get_object(Bucket=prefs.bucket(), Key=prefix + name)["Body"].read()
             for name in (peft.CONFIG_FILE, peft.WEIGHTS_FILE, TRAINING_CONFIG_FILE)}  # fmt: skip
    assert peft.checksum(files) == schema["checksum"]
    assert TrainingConfig.from_json(files[TRAINING_CONFIG_FILE]).gate == 0.5

    # The dataset and its manifest, under the adapter's prefix.
    assert dataset_path.endswith(f"/adapters/{persona_id}/train_jobs/{job_id}/{DATASET_FILE}")
    body = prefs.s3.get_object(Bucket=prefs.bucket(), Key=dataset_path)["Body"].read()
    rows = [json.loads(line) for line in body.splitlines()]
    assert [(r["target"], r["alternative"]) for r in rows] == [(c, a) for _, a, c in HABIT]
    assert {r["message_id"] for r in rows} == {s["preference"]["message_id"] for s in sent}
    assert all(r["prompt"].endswith(f"{q}<|im_end|>\n<|im_start|>assistant\n")
               and r["weight"] == 1.0 and r["kind"] == PREFERRED and not r["tokens"]["truncated"]
               for r, (q, _, _) in zip(rows, HABIT, strict=True))  # fmt: skip
    key = dataset_path.replace(DATASET_FILE, MANIFEST_FILE)
    manifest = json.loads(prefs.s3.get_object(Bucket=prefs.bucket(), Key=key)["Body"].read())
    assert [s["split"] for s in manifest["sources"]] == ["train"] * 3 + ["heldout"] * 2
    assert manifest["rows"] == THRESHOLD and manifest["gate"] == 0.5

    # The router state: a centroid of the contexts, and when it was trained.
    state = await fetch_one(
        prefs, "SELECT centroid_vec IS NOT NULL, last_trained_at IS NOT NULL"
        " FROM adapter_router_state WHERE artifact_id = %s", persona_id,
    )  # fmt: skip
    assert state == (True, True)

    # The user's next turn is served with version 2, at the persona's gate.
    question = {"message": {"content": "What is the capital of Peru?"}}
    turn = await api.post("/v1/chat", headers=headers, json=question)
    assert turn.status_code == 200, turn.text
    answer = turn.json()["data"]
    routed = [a for a in answer["trace"]["router"]["adapters"] if a["id"] == persona_id]
    assert routed == [{"id": persona_id, "weight": 0.5, "mode": "hybrid", "version": 2}]
    assert {"id": persona_id, "weight": 0.5, "how": "lora", "version": 2} in answer["adapters"]

    # The corrections are likelier under version 2 (at its gate) than under the base: more
    # likely, not merely different.
    config_, state_, _, tokenizer = lm
    base = FrozenBase.from_state(config_, state_)
    samples = [TrainingSample(target=c, kind=PREFERRED, alternative=a,
                              messages=(("system", DEFAULT_SYSTEM_PROMPT), ("user", q)))
               for q, a, c in HABIT]  # fmt: skip
    weights = peft.parse(files, config_, max_rank=16)

    def logprobs(with_weights):
        sums, _ = target_logprobs(base, samples, tokenizer=tokenizer, weights=with_weights,
                                  gate=0.5, max_tokens=64, batch_size=3)  # fmt: skip
        return sums

    before, after = logprobs(None), logprobs(weights)
    assert (after > before).all(), (before, after)


async def test_a_version_whose_evaluation_regresses_is_kept_as_a_candidate(prefs, trained) -> None:
    _, job_id, persona_id, _, _, job = trained["reverser"]
    status, meta, new_version, *_ = job
    assert status == "succeeded", meta
    assert meta["promoted"] is False and new_version == 2
    # The held-out corrections prefer the base's sentences; the version learned the opposite.
    heldout = meta["metrics"]["heldout"]
    assert heldout["new"]["aligned"] < heldout["current"]["aligned"], heldout
    assert meta["decision"].startswith("alignment fell"), meta["decision"]
    # Kept as a candidate: the row and its files exist, the pointer still names version 1.
    served = await fetch_one(prefs, "SELECT version FROM artifact WHERE id = %s", persona_id)
    candidate = await fetch_one(prefs, "SELECT schema FROM artifact_version WHERE artifact_id = %s"
                                " AND version = 2", persona_id)  # fmt: skip
    assert served == (1,) and candidate[0]["promoted"] is False
    assert candidate[0]["job_id"] == job_id
    head = prefs.s3.head_object(Bucket=prefs.bucket(),
                                Key=candidate[0]["fs_dir"] + peft.WEIGHTS_FILE)  # fmt: skip
    assert head["ContentLength"] > 0
    # No centroid for a version that is not served.
    state = await fetch_one(prefs, "SELECT centroid_vec IS NULL FROM adapter_router_state"
                            " WHERE artifact_id = %s", persona_id)  # fmt: skip
    assert state == (True,)
