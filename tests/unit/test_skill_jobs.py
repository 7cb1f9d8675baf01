"""A skill adapter's training job, the parts that need no store (issue 20 item 4): each event's
prompt is rebuilt as its own user's, the dataset rows and the manifest say whose feedback each
row is and which clusters the job trained on, and the version is published as the skill's,
keeping the fields that bind it to its cluster (and only those), next to the job's own."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from functions.train import skill
from functions.train.dataset import manifest, prompts_of, rows_of
from shared.domain.adapters.objects import CONFIG_FILE, WEIGHTS_FILE
from shared.domain.adapters.registry import AdapterFiles, adapter_schema
from shared.domain.chat.memory import Turn, WorkingMemory
from shared.domain.preferences.jobs import Job, TrainingEvent

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
GLOBAL_SKILL = Job(id="j", user_id=None, adapter_id="a", status="running", attempt=1,
                   max_attempts=3, step_budget=4, priority=1, preference_event_ids=(1, 2, 3),
                   instructions=(), base_version=1, base_has_weights=False, meta={},
                   kind="skill", cluster_ids=("c1", "c2"))  # fmt: skip
SERVED = {"kind": "adapter.lora", "adapter_type": "skill", "cluster_id": "c1", "status": "active",
          "applicability": {"natural_language": "Skill: sql \u2013 writing SQL"},
          "merged_into": None}  # fmt: skip


def _event(event_id: int, user_id: str) -> TrainingEvent:
    return TrainingEvent(
        id=event_id, conversation_id=f"c{event_id}", message_id=f"m{event_id}",
        explicit_signal="dislike", score=-1.0, corrected_text=f"Answer {event_id}.", notes=None,
        context_text="Which query?", answer=f"An answer {event_id}.",
        updated_at=T0 + dt.timedelta(minutes=event_id), user_id=user_id,
    )  # fmt: skip


class _Cursor:
    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows

    async def fetchall(self) -> list[tuple[str, str]]:
        return self.rows


class _Pool:
    """Every answer's parent is the user message `q<n>`."""

    def __init__(self, events: list[TrainingEvent]) -> None:
        self.parents = [(e.message_id, f"q{e.id}") for e in events]

    def connection(self) -> _Pool:
        return self

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def execute(self, sql: str, params: Any) -> _Cursor:
        return _Cursor(self.parents)


class _Memory:
    """Records as whom each branch was rebuilt."""

    def __init__(self) -> None:
        self.readers: list[tuple[str, str]] = []

    async def rebuild(self, user_id: str, conversation_id: str, head: str) -> WorkingMemory:
        self.readers.append((user_id, conversation_id))
        return WorkingMemory(head=head, turns=[Turn(head, "user", f"asked by {user_id}", 1)])


async def test_each_prompt_is_rebuilt_as_its_own_users() -> None:
    events = [_event(1, "u1"), _event(2, "u2"), _event(3, "u1")]
    memory = _Memory()
    prompts = await prompts_of(_Pool(events), memory, GLOBAL_SKILL, events,  # type: ignore[arg-type]
                               system_prompt="Be brief.")  # fmt: skip
    assert memory.readers == [("u1", "c1"), ("u2", "c2"), ("u1", "c3")]
    assert prompts[2] == (("system", "Be brief."), ("user", "asked by u2"))


def test_rows_and_the_manifest_say_whose_feedback_and_which_clusters() -> None:
    events = [_event(1, "u1"), _event(2, "u2"), _event(3, "u1")]
    prompts = {e.id: (("system", "s"), ("user", f"q{e.id}")) for e in events}
    rows, skipped = rows_of(events, prompts)
    assert [(r.event_id, r.user_id) for r in rows] == [(1, "u1"), (2, "u2"), (3, "u1")]
    assert skipped == []
    body = json.loads(manifest(GLOBAL_SKILL, rows, skipped, rows[-2:], b"", max_tokens=64,
                               gate=0.5, system_prompt="s"))  # fmt: skip
    assert (body["kind"], body["cluster_ids"], body["user_id"]) == ("skill", ["c1", "c2"], None)
    assert [(s["event_id"], s["user_id"], s["split"]) for s in body["sources"]] == [
        (1, "u1", "train"), (2, "u2", "heldout"), (3, "u1", "heldout")]  # fmt: skip


def test_a_persona_job_is_published_as_the_users_persona_with_no_binding() -> None:
    persona = Job(id="j", user_id="u", adapter_id="a", status="running", attempt=1,
                  max_attempts=3, step_budget=4, priority=1, preference_event_ids=(),
                  instructions=(), base_version=1, base_has_weights=False, meta={})  # fmt: skip
    assert (persona.kind, persona.cluster_ids) == ("persona", ())
    target = skill.persona(persona)
    assert (target.name, target.adapter_type, target.owner_user_id) == ("persona", "persona", "u")
    extra = skill.extra_schema(target, job_id="j", promoted=True, metrics={"m": 1},
                               training_config={"gate": 0.5})  # fmt: skip
    assert extra == {"job_id": "j", "promoted": True, "metrics": {"m": 1},
                     "training_config": {"gate": 0.5}}  # fmt: skip


def test_a_skills_version_keeps_its_binding_and_is_published_as_the_skill() -> None:
    target = skill.skill(GLOBAL_SKILL, "sql-skill", {**SERVED, "fs_dir": "x/", "rank": 4})
    assert (target.name, target.adapter_type, target.owner_user_id, target.disabled) == (
        "sql-skill", "skill", None, False)  # fmt: skip
    extra = skill.extra_schema(target, job_id="j", promoted=False, metrics={},
                               training_config={"gate": 0.5})  # fmt: skip
    assert extra == {"cluster_id": "c1", "status": "active", "merged_into": None,
                     "applicability": SERVED["applicability"], "job_id": "j", "promoted": False,
                     "metrics": {}, "training_config": {"gate": 0.5}}  # fmt: skip
    # None of it replaces what `registry.publish` writes from the files (it would refuse).
    config = {"base_model_name_or_path": "m", "r": 4, "lora_alpha": 8, "target_modules": ["q"]}
    files = AdapterFiles({CONFIG_FILE: json.dumps(config).encode(), WEIGHTS_FILE: b""}, "sha")
    written = adapter_schema(files, prefix="p/", adapter_type="skill", version=2)
    assert not set(extra) & set(written)
    # A field the served schema lacks stays absent; a disabled skill is not trained.
    bare = skill.skill(GLOBAL_SKILL, "s", {"kind": "adapter.lora", "cluster_id": "c1"})
    assert bare.binding == {"cluster_id": "c1"}
    assert skill.skill(GLOBAL_SKILL, "s", {**SERVED, "status": "disabled"}).disabled
