"""One training job, end to end (docs/model.md, "Training: the job"), on the contract of
`shared.domain.preferences.jobs`:

claim → the events as samples (dataset.py) → `dataset.jsonl` + `manifest.json` in the object
store → hold out the most recent 10 % (at least 2) → train the LoRA from the served version (or
a fresh one) at the persona's gate, writing progress to the job → score the new version and the
one in use on the hold-out → publish the new version (numbered max + 1, a candidate) → in one
transaction: end the job, move the pointer if the version is promoted (and still beats what is
served), move the router's centroid.

Failures: a store that cannot be reached (Postgres, S3, the pool) is transient (`fail`
retries the job through the outbox after a back-off, then ends it `failed`); anything else
(a diverged run, data the model refuses, a bug) is permanent, `failed` at once with the reason.
Either way every event is kept. A job cancelled meanwhile (a reset) stops at its next progress
write and serves nothing.

A skill adapter's job (`job.kind == "skill"`, issue 20 item 4) runs the same way over its
clusters' events, each prompt rebuilt as its own user's, at TRAINING_GATE, and publishes under
the skill's name, type and owner with the fields that bind it to its cluster (skill.py); a
skill that was disabled meanwhile fails the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import botocore.exceptions
from psycopg.types.json import Jsonb

from functions.train import dataset, skill
from functions.train.model import (
    Model,
    Trained,
    base_answers,
    checksum,
    parse_weights,
    train_and_evaluate,
)
from functions.train.model import backend as jax_backend
from shared.domain.adapters import registry, router_state
from shared.domain.adapters.objects import FILES, job_prefix, put_dataset
from shared.domain.chat import sources
from shared.domain.chat.memory import MemoryStore
from shared.domain.preferences import jobs
from shared.domain.preferences.schedule import TrainingPolicy
from shared.domain.tools.builtins import DEFAULT_SYSTEM_PROMPT
from shared.neural.lora import LoraWeights
from shared.neural.tokenizer import ChatTokenizer
from shared.neural.training import (
    TrainingConfig,
    TrainingSample,
    holdout_split,
    promotion_decision,
    version_files,
)
from shared.platform import outbox
from shared.platform.errors import Conflict
from shared.platform.runtime.outages import as_unavailable
from shared.platform.settings import Settings
from shared.services import Services

log = logging.getLogger(__name__)
# The base's answers to held-out prompts are generated from their last tokens at most (the
# generator's prefill buckets end at 2048 with the answer's room).
MAX_GENERATION_PROMPT = 1024


class Cancelled(Exception):
    """The job stopped running (the user reset their model): stop, serve nothing."""


class Unusable(Exception):
    """The job cannot be trained (nothing left to train on, a served version whose files do
    not match their checksum): a permanent failure."""


@dataclass(frozen=True)
class Outcome:
    job_id: str
    status: str  # succeeded | failed | queued (retried later) | cancelled | skipped (not ours)
    version: int | None = None
    promoted: bool = False
    reason: str = ""


def transient(exc: BaseException) -> bool:
    """Worth another attempt: a store outage, the network, memory, a racing publisher."""
    if as_unavailable(exc) is not None or isinstance(exc, Conflict | MemoryError):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or code in ("Throttling", "SlowDown", "RequestTimeout")
    return isinstance(exc, botocore.exceptions.BotoCoreError | ConnectionError | TimeoutError)


async def run(job_id: str, *, services: Services, model: Model) -> Outcome:
    policy = TrainingPolicy.from_settings(services.settings)
    async with services.db.connection() as conn, conn.transaction():
        job = await jobs.claim(conn, job_id)
    if job is None:  # already running elsewhere, done, cancelled or gone: nothing to do
        return Outcome(job_id, "skipped")
    started = time.monotonic()
    try:
        return await _Run(job, services, model, policy, started).train()
    except Cancelled:
        log.warning("training job cancelled while it ran", extra={"job_id": job_id})
        return Outcome(job_id, "cancelled")
    except asyncio.CancelledError:  # the host is stopping: hand the job back for a retry
        await _fail(services, policy, job_id, "the train host stopped during the job", True)
        raise
    except Exception as exc:
        retry = transient(exc)
        reason = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("training job failed", exc_info=not retry,
                    extra={"job_id": job_id, "transient": retry, "reason": reason})  # fmt: skip
        status = await _fail(services, policy, job_id, reason, retry)
        return Outcome(job_id, status or "failed", reason=reason)


async def _fail(
    services: Services, policy: TrainingPolicy, job_id: str, reason: str, retry: bool
) -> str | None:
    async with services.db.connection() as conn, conn.transaction():
        status = await jobs.fail(conn, job_id, reason, transient=retry, policy=policy)
    if status == "queued":
        await outbox.flush(services.db, services.sqs, services.queues)
    return status


class _Run:
    def __init__(
        self, job: jobs.Job, services: Services, model: Model, policy: TrainingPolicy,
        started: float,
    ):  # fmt: skip
        self.job, self.services, self.model, self.policy = job, services, model, policy
        self.settings, self.started = services.settings, started
        self.system_prompt = self.settings.chat_system_prompt or DEFAULT_SYSTEM_PROMPT

    async def beat(self, progress: Mapping[str, Any]) -> None:
        """Writes progress; a job that is no longer running is cancelled."""
        async with self.services.db.connection() as conn:
            alive = await jobs.heartbeat(conn, self.job.id, progress)
        if not alive:
            raise Cancelled(self.job.id)

    async def train(self) -> Outcome:
        job, settings, s3 = self.job, self.settings, self.services.s3
        bucket = self.services.bucket()
        memory = MemoryStore(pool=self.services.db, redis=self.services.redis,
                             max_turns=settings.chat_memory_turns)  # fmt: skip
        async with self.services.db.connection() as conn:
            target = await skill.target(conn, job)
            if target.disabled:
                raise Unusable("the adapter is disabled")
            events = await jobs.events_of(conn, job)
            gate = await gate_of(conn, job, settings)
            served = await _served(conn, job)
        prompts = await dataset.prompts_of(
            self.services.db, memory, job, events, system_prompt=self.system_prompt
        )
        rows, skipped = dataset.rows_of(events, prompts)
        if not rows:
            raise Unusable(f"no trainable events left of {len(job.preference_event_ids)}")
        used = {row.event_id for row in rows}
        embeddings = [e.context_embedding for e in events
                      if e.id in used and e.context_embedding is not None]  # fmt: skip
        tokenizer = await asyncio.to_thread(self.model.tokenizer, settings.weights_dir)
        init = await asyncio.to_thread(_weights_of, s3, bucket, served) if served else None
        config = training_config(settings, job, gate=gate, init=init, backend=jax_backend())
        training, heldout = holdout_split(rows)
        lines = dataset.encode(rows, tokenizer, max_tokens=config.max_tokens)
        data = b"".join(lines)
        manifest = dataset.manifest(
            job, rows, skipped, heldout, data, max_tokens=config.max_tokens, gate=gate,
            system_prompt=self.system_prompt,
        )  # fmt: skip
        dataset_path = await asyncio.to_thread(
            put_dataset, s3, bucket, job_prefix(job.user_id, job.adapter_id, job.id),
            dataset=data, manifest=manifest,
        )  # fmt: skip
        await self.beat({"phase": "loading", "rows": len(rows), "heldout": len(heldout)})
        loaded = await asyncio.to_thread(
            self.model.loaded, settings.weights_dir, settings.jax_cache_dir
        )
        held = await asyncio.to_thread(
            _with_base_answers, loaded, tokenizer, [r.sample for r in heldout], config,
            settings.training_alternative_max_tokens,
        )  # fmt: skip
        trained = await self._train(loaded, tokenizer, [r.sample for r in training], held, config,
                                    init)  # fmt: skip
        decision = promotion_decision(trained.new, trained.current, n_heldout=len(heldout))
        metrics = _metrics(trained, n_heldout=len(heldout), served=job.base_version,
                           seconds=time.monotonic() - self.started)  # fmt: skip
        await self.beat({"phase": "publishing", "step": trained.result.steps,
                         "total": trained.result.total_steps})  # fmt: skip
        files, digest = version_files(trained.result.weights, trained.result.config)
        record = await registry.publish(
            self.services.db, s3, bucket, registry.AdapterFiles(files, digest),
            owner_user_id=target.owner_user_id, name=target.name, adapter_id=job.adapter_id,
            adapter_type=target.adapter_type, created_by="system",
            change_note=f"training job {job.id}: {decision.reason}", serve=False,
            extra_schema=skill.extra_schema(
                target, job_id=job.id, promoted=decision.promote, metrics=metrics,
                training_config=config_dict(trained.result.config)),
        )  # fmt: skip
        return await self._finish(record.version, decision.promote, decision.reason, metrics,
                                  trained, embeddings, dataset_path)  # fmt: skip

    async def _train(
        self, loaded: Any, tokenizer: ChatTokenizer, training: list[TrainingSample],
        heldout: list[TrainingSample], config: TrainingConfig, init: LoraWeights | None,
    ) -> Trained:  # fmt: skip
        """Training in a worker thread; progress goes to the job row (throttled), and a job
        cancelled meanwhile (or a host stopping) ends the run at its next step."""
        loop, stop = asyncio.get_running_loop(), threading.Event()
        every, last = self.settings.training_heartbeat_s, [-float("inf")]

        def progress(step: int, total: int, loss: float) -> None:
            if stop.is_set():
                raise Cancelled(self.job.id)
            now = time.monotonic()
            if step < total and now - last[0] < every:
                return
            last[0] = now
            beat = {"phase": "training", "step": step, "total": total, "loss": loss}
            try:
                asyncio.run_coroutine_threadsafe(self.beat(beat), loop).result(timeout=60)
            except Cancelled:
                raise
            except Exception as exc:  # a missed heartbeat is no reason to lose the run
                log.warning("progress not written: %s", exc, extra={"job_id": self.job.id})

        try:
            return await asyncio.to_thread(
                train_and_evaluate, loaded, tokenizer, training, heldout, config, init=init,
                progress=progress,
            )  # fmt: skip
        except asyncio.CancelledError:
            stop.set()
            raise

    async def _finish(
        self, version: int, promote: bool, reason: str, metrics: dict[str, Any],
        trained: Trained, embeddings: list[Any], dataset_path: str,
    ) -> Outcome:  # fmt: skip
        """Ends the job and, when promoted, serves the version (only if the version the job
        was judged against is still the one served: a rollback made meanwhile stands) and
        moves the router's centroid, in one transaction."""
        job, settings = self.job, self.settings
        loss = trained.result.losses[-1] if trained.result.losses else None
        async with self.services.db.connection() as conn, conn.transaction():
            outcome = {"version": version, "promoted": promote, "decision": reason,
                       "metrics": metrics, "losses": list(trained.result.losses)}  # fmt: skip
            ended = await jobs.succeed(
                conn, job.id, policy=self.policy, new_version=version, loss=loss,
                dataset_path=dataset_path, outcome=outcome,
            )  # fmt: skip
            if not ended:  # cancelled after training: the version stays an unserved candidate
                raise Cancelled(job.id)
            if promote and not await registry.promote(
                conn, job.adapter_id, version, over=job.base_version
            ):
                promote, reason = False, "the served version changed during the job"
                await registry.annotate_version(conn, job.adapter_id, version,
                                                {"promoted": False})  # fmt: skip
                await conn.execute(
                    "UPDATE training_job SET meta = meta || %s WHERE id = %s",
                    (Jsonb({"promoted": False, "decision": reason}), job.id),
                )
            if promote:
                await router_state.record_training(
                    conn, job.adapter_id, embeddings, ema=settings.training_centroid_ema
                )
        await outbox.flush(self.services.db, self.services.sqs, self.services.queues)
        seconds = round(time.monotonic() - self.started, 2)
        log.info("training job done", extra={
            "job_id": job.id, "version": version, "promoted": promote, "decision": reason,
            "steps": trained.result.steps, "seconds": seconds,
        })  # fmt: skip
        return Outcome(job.id, "succeeded", version, promote, reason)


async def gate_of(conn: Any, job: jobs.Job, settings: Settings) -> float:
    """The gate the job trains at: the one its adapter is served at."""
    if job.kind == "skill" or job.user_id is None:
        # The routing policy weighs a skill per turn, by its centroid's similarity to the
        # context (the seeded `cluster_near_skill` rule: `"weight": "similarity"`), and the
        # policy is each user's: no fixed weight to train at, so the configured default.
        return settings.training_gate
    return await persona_gate(conn, job.user_id, default=settings.training_gate)


async def persona_gate(conn: Any, user_id: str, *, default: float) -> float:
    """The gate the router serves the persona at, from the user's routing policy (their own,
    else the seeded default); `default` when it gives the persona no fixed weight."""
    policy = await sources.load_artifact(
        conn, user_id, kind="policy.routing", artifact_id=None, default_name=sources.DEFAULT_POLICY
    )
    weight = persona_weight(policy.schema)
    return default if weight is None else weight


def persona_weight(policy: Mapping[str, Any]) -> float | None:
    """The fixed weight the first `activate_adapter_by_type` rule for personas gives them
    (clamped to 1, as the router's guardrails do); None when no rule gives a number (a weight
    computed per turn, or no such rule)."""
    for rule in policy.get("rules") or []:
        action = rule.get("action") if isinstance(rule, dict) else None
        if not isinstance(action, dict):
            continue
        weight = action.get("weight")
        if (
            action.get("type") == "activate_adapter_by_type"
            and action.get("adapter_type") == "persona"
            and isinstance(weight, int | float)
            and not isinstance(weight, bool)
            and weight > 0
        ):
            return min(float(weight), 1.0)
    return None


async def _served(conn: Any, job: jobs.Job) -> dict[str, Any] | None:
    """The schema of the version the job starts from, when it has weights."""
    if not job.base_has_weights:
        return None
    row = await (
        await conn.execute(
            "SELECT schema FROM artifact_version WHERE artifact_id = %s AND version = %s",
            (job.adapter_id, job.base_version),
        )
    ).fetchone()
    return dict(row[0]) if row is not None else None


def _weights_of(s3: Any, bucket: str, schema: Mapping[str, Any]) -> LoraWeights:
    """The served version's weights, refused unless they match the checksum it records."""
    prefix = schema["fs_dir"]
    files = {name: s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
             for name in FILES}  # fmt: skip
    if checksum(files) != schema.get("checksum"):
        raise Unusable(f"the served version's files at {prefix} do not match their checksum")
    return parse_weights(files)


def training_config(
    settings: Settings, job: jobs.Job, *, gate: float, init: LoraWeights | None, backend: str
) -> TrainingConfig:
    """The backend's defaults, the settings that are set, the job's step budget, the gate;
    a run that continues the served version keeps its rank and alpha."""
    knobs = {
        "max_tokens": settings.training_max_tokens, "batch_size": settings.training_batch_size,
        "epochs": settings.training_epochs, "learning_rate": settings.training_learning_rate,
    }  # fmt: skip
    overrides: dict[str, Any] = {k: v for k, v in knobs.items() if v is not None}
    overrides.update(
        max_steps=job.step_budget, gate=gate, time_budget_s=settings.training_time_budget_s
    )
    if init is not None:
        overrides.update(rank=init.rank, alpha=init.alpha)
    return TrainingConfig.for_backend(backend, **overrides)


def config_dict(config: TrainingConfig) -> dict[str, Any]:
    """The config as `training_config.json` holds it (with its format tag)."""
    return dict(json.loads(config.to_json()))


def _with_base_answers(
    loaded: Any, tokenizer: ChatTokenizer, heldout: list[TrainingSample], config: TrainingConfig,
    max_new_tokens: int,
) -> list[TrainingSample]:  # fmt: skip
    """Held-out likes and dislikes get the base's greedy answer as their alternative (what
    alignment compares them with); one that is the same text as the target says nothing and
    is left without."""
    wanted = [i for i, s in enumerate(heldout) if s.alternative is None]
    keep = min(config.max_tokens, MAX_GENERATION_PROMPT)
    prompts = [heldout[i].prompt(tokenizer)[-keep:] for i in wanted]
    answers = base_answers(loaded, tokenizer, prompts, max_new_tokens=max_new_tokens)
    out = list(heldout)
    for i, answer in zip(wanted, answers, strict=True):
        text = (answer or "").strip()
        if text and text != heldout[i].target:
            out[i] = replace(heldout[i], alternative=text)
    return out


def _evaluation(measure: Any) -> dict[str, Any]:
    return {"loss": measure.loss, "aligned": measure.aligned, "pairs": measure.pairs,
            "alignment": measure.alignment}  # fmt: skip


def _metrics(trained: Trained, *, n_heldout: int, served: int, seconds: float) -> dict[str, Any]:
    result = trained.result
    return {
        "heldout": {"events": n_heldout, "new": _evaluation(trained.new),
                    "current": _evaluation(trained.current), "current_version": served},
        "train": {"loss": result.losses[-1] if result.losses else None, "steps": result.steps,
                  "total_steps": result.total_steps, "stop_reason": result.stop_reason,
                  "samples": result.samples, "target_tokens": result.target_tokens,
                  "truncated_samples": result.truncated_samples,
                  "sequence_length": result.sequence_length},
        "train_seconds": round(result.seconds, 3), "seconds": round(seconds, 3),
    }  # fmt: skip
