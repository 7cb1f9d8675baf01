"""The persona's pure parts: its weightless schema, how instructions render and when weights
count as having learned one, and how the router and the adapter plan apply it (no I/O)."""

from __future__ import annotations

import datetime as dt

from shared.domain.artifacts.kinds import schema_problems
from shared.domain.llm.adapter_plan import plan_adapters
from shared.domain.llm.backend import AdapterUse, AppliedAdapter, Message
from shared.domain.llm.providers import capabilities
from shared.domain.preferences import persona
from shared.domain.preferences.feedback import instruction_views
from shared.domain.routing.candidates import AdapterCandidate
from shared.domain.routing.engine import MODES_BY_BACKEND, RoutingContext, route
from shared.neural import peft

LOCAL, OPENAI = capabilities("local_lora"), capabilities("openai")
HELLO = (Message("system", "You are helpful."), Message("user", "hello"))
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# The seeded default policy's persona rule (sql/seed/001_default_artifacts.sql).
DEFAULT_POLICY = {
    "name": "default_user_routing", "max_active_adapters": 3, "weight_floor": 0.05,
    "rules": [{"id": "always_persona", "when": "true", "action": {
        "type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5}}],
}  # fmt: skip


def _instruction(n: int, kind: str = "always", learned: int | None = None) -> persona.Instruction:
    at = T0 + dt.timedelta(minutes=n)
    return persona.Instruction(f"i{n}", kind, f"rule {n}", n, learned, at, at)


def test_the_weightless_version_is_a_valid_adapter_schema_on_the_models_base() -> None:
    schema = persona.base_schema(1)
    assert schema_problems(schema) == []
    assert schema["mode"] == "prompt" and schema["adapter_type"] == "persona"
    assert not persona.has_weights(schema)
    assert persona.has_weights({**schema, "fs_dir": "users/u/adapters/a/v0002/", "checksum": "x"})
    assert persona.BASE_MODEL == peft.BASE_MODEL


def test_render_is_newest_first_whole_lines_within_the_budget() -> None:
    items = [("always", "answer in French"), ("never", "use   emoji\n")]
    text = persona.render(items)
    assert text == f"{persona.PREAMBLE}\n- Always: answer in French\n- Never: use emoji"
    assert persona.render([]) is None
    long = [("always", "x" * 400)] * 5
    rendered = persona.render(long, max_chars=1200)
    assert rendered is not None and rendered.count("\n") == 2 and len(rendered) <= 1200
    assert persona.render([("always", "x" * 2000)]) is None


def test_an_instruction_counts_as_learned_only_by_the_weights_that_took_it_in() -> None:
    learned = _instruction(1, learned=3)
    assert persona.learned_by(learned, 3, True) and persona.learned_by(learned, 5, True)
    assert not persona.learned_by(learned, 2, True)  # rolled back behind the version
    assert not persona.learned_by(learned, 3, False)  # reset: the served version has no weights
    assert not persona.learned_by(_instruction(2), 3, True)  # never learned (or edited since)


def test_views_say_how_each_instruction_applies() -> None:
    items = [_instruction(3), _instruction(2, learned=4), _instruction(1)]
    views = instruction_views(items, 4, True)
    assert [v.applied_as for v in views] == ["prompt", "weights", "prompt"]
    assert [v.applied_as for v in instruction_views(items, None, False)] == ["prompt"] * 3


def _persona(mode: str, every: str | None, pending: str | None) -> AdapterCandidate:
    return AdapterCandidate(
        id="p", adapter_type="persona", mode=mode, version=2,  # type: ignore[arg-type]
        prompt_instructions=every, pending_instructions=pending,
    )  # fmt: skip


def test_the_default_policy_applies_a_prompt_persona_at_its_gate() -> None:
    routed = route(
        DEFAULT_POLICY, RoutingContext(None, (_persona("prompt", "- Always: x", None),)),
        supported_modes=MODES_BY_BACKEND["local"],
    )  # fmt: skip
    assert [(a.id, a.weight, a.mode) for a in routed.adapters] == [("p", 0.5, "prompt")]
    assert routed.trace["adapters"] == [{"id": "p", "weight": 0.5, "mode": "prompt", "version": 2}]
    plan = plan_adapters(LOCAL, HELLO, routed.adapters)
    assert plan.applied == (AppliedAdapter("p", 1.0, "prompt"),)
    assert plan.messages[0].content.startswith("- Always: x")
    assert plan.body == {}  # nothing for the inference service to load


def test_weights_and_instructions_newer_than_them_apply_together_on_the_local_service() -> None:
    use = AdapterUse("p", 0.5, "hybrid", version=2, prompt_instructions="ALL",
                     pending_instructions="NEW")  # fmt: skip
    plan = plan_adapters(LOCAL, HELLO, [use])
    assert plan.body == {"adapters": [{"id": "p", "weight": 0.5, "version": 2}]}
    assert plan.messages[0].content == "NEW\n\nYou are helpful."
    assert {a.how for a in plan.applied} == {"lora", "prompt"}
    assert {"event": "prompt_injected", "id": "p", "pending": True} in plan.trace
    # Everything learned: the weights alone.
    learned = plan_adapters(LOCAL, HELLO, [AdapterUse("p", 0.5, "hybrid", version=2,
                                                       prompt_instructions="ALL")])  # fmt: skip
    assert learned.messages == HELLO and [a.how for a in learned.applied] == ["lora"]


def test_an_api_backend_without_the_weights_gets_every_instruction() -> None:
    use = AdapterUse("p", 0.5, "hybrid", version=2, prompt_instructions="ALL",
                     pending_instructions="NEW")  # fmt: skip
    plan = plan_adapters(OPENAI, HELLO, [use])
    assert plan.messages[0].content == "ALL\n\nYou are helpful."
    assert plan.applied == (AppliedAdapter("p", 1.0, "prompt"),)
