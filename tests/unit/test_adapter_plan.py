"""Adapter planning per provider: pure rules, no I/O."""

from __future__ import annotations

import typing

import pytest

from shared.domain.llm.adapter_plan import inject_instructions, plan_adapters
from shared.domain.llm.backend import AdapterUse, AppliedAdapter, Message
from shared.domain.llm.providers import PROVIDERS, REMOTE_PROVIDERS, capabilities
from shared.platform.settings import Settings

HELLO = (Message("user", "hello"),)
OPENAI, LORAX, TOGETHER = capabilities("openai"), capabilities("lorax"), capabilities("together")
SAGEMAKER, LOCAL = capabilities("sagemaker"), capabilities("local_lora")


def _drops(trace) -> list[tuple[str, str]]:
    return [(t["id"], t["reason"]) for t in trace if t["event"] == "adapter_dropped"]


def test_the_registry_is_the_spec_matrix() -> None:
    rows = {
        name: (c.remote_style, c.multi_adapter, c.gate_weights, c.max_adapters)
        for name, c in PROVIDERS.items()
    }
    assert rows == {
        "openai": ("model_id", False, False, 1),
        "azure": ("model_id", False, False, 1),
        "vertex": ("model_id", False, False, 1),
        "bedrock": ("model_id", False, False, 1),
        "together": ("adapter_param", True, True, 3),
        "lorax": ("adapter_param", True, True, 5),
        "adapter_server": ("adapter_param", True, True, 3),
        "sagemaker": ("adapter_param", False, False, 1),
        "local_lora": ("none", True, True, 3),
    }
    assert LOCAL.compatible_modes == {"local", "prompt", "hybrid"}
    assert all(
        PROVIDERS[p].compatible_modes == {"remote", "prompt", "hybrid"} for p in REMOTE_PROVIDERS
    )
    # The settings offer exactly the remote providers, plus the local service.
    choices = typing.get_args(Settings.model_fields["llm_backend"].annotation)
    assert set(choices) == {"local", *REMOTE_PROVIDERS}
    with pytest.raises(ValueError, match="unknown LLM provider"):
        capabilities("nope")


def test_local_lora_limit_matches_the_inference_service() -> None:
    lora = pytest.importorskip("shared.neural.lora")
    assert LOCAL.max_adapters == lora.MAX_ADAPTERS_PER_REQUEST


def test_incompatible_modes_are_dropped_and_traced() -> None:
    adapters = [
        AdapterUse("loc", 0.9, "local"),
        AdapterUse("rem", 0.8, "remote", remote_model_id="ft:gpt-4o-mini:org::x"),
    ]
    remote = plan_adapters(OPENAI, HELLO, adapters)
    assert _drops(remote.trace) == [("loc", "mode_incompatible")]
    assert remote.body == {"model": "ft:gpt-4o-mini:org::x"}
    local = plan_adapters(LOCAL, HELLO, adapters)
    assert _drops(local.trace) == [("rem", "mode_incompatible")]
    assert local.body == {"adapters": [{"id": "loc", "weight": 0.9, "version": None}]}


def test_model_id_provider_uses_the_strongest_fine_tune_and_drops_the_rest() -> None:
    adapters = [
        AdapterUse("weak", 0.2, "remote", remote_model_id="ft:weak"),
        AdapterUse("strong", 0.7, "remote", remote_model_id="ft:strong"),
        AdapterUse("mid", 0.5, "remote", remote_model_id="ft:mid"),
        AdapterUse("param-only", 0.9, "remote", remote_adapter_id="user/lora"),
    ]
    plan = plan_adapters(OPENAI, HELLO, adapters)
    assert plan.body == {"model": "ft:strong"}
    assert plan.applied == (AppliedAdapter("strong", 1.0, "model_id"),)
    assert _drops(plan.trace) == [
        ("param-only", "no_remote_id"),
        ("mid", "max_adapters"),
        ("weak", "max_adapters"),
    ]
    dropped = {t["id"]: t["weight"] for t in plan.trace}
    assert dropped["weak"] == 0.2 and plan.messages == HELLO


def test_lorax_merges_several_adapters_with_their_gates() -> None:
    adapters = [
        AdapterUse(f"a{i}", w, "remote", remote_adapter_id=f"org/a{i}")
        for i, w in enumerate([0.1, 0.6, 0.3, 0.9, 0.5, 0.2])
    ]
    plan = plan_adapters(LORAX, HELLO, adapters)
    assert plan.body == {
        "merged_adapters": {
            "ids": ["org/a3", "org/a1", "org/a4", "org/a2", "org/a5"],
            "weights": [0.9, 0.6, 0.5, 0.3, 0.2],
            "merge_strategy": "linear",
        }
    }
    assert _drops(plan.trace) == [("a0", "max_adapters")]
    assert [(a.id, a.weight, a.how) for a in plan.applied][:2] == [
        ("a3", 0.9, "adapter_param"),
        ("a1", 0.6, "adapter_param"),
    ]
    single = plan_adapters(LORAX, HELLO, adapters[:1])
    assert single.body == {"adapter_id": "org/a0"}
    assert single.applied == (AppliedAdapter("a0", 1.0, "adapter_param"),)


def test_generic_adapter_param_providers_pass_weights_only_where_supported() -> None:
    adapters = [
        AdapterUse("x", 0.4, "remote", remote_adapter_id="org/x"),
        AdapterUse("y", 0.8, "hybrid", remote_adapter_id="org/y"),
    ]
    together = plan_adapters(TOGETHER, HELLO, adapters)
    assert together.body == {
        "adapter_id": "org/y",
        "adapter_ids": ["org/y", "org/x"],
        "adapter_weights": [0.8, 0.4],
    }
    sagemaker = plan_adapters(SAGEMAKER, HELLO, adapters)
    assert sagemaker.body == {"adapter_id": "org/y"}
    assert sagemaker.applied == (AppliedAdapter("y", 1.0, "adapter_param"),)
    assert _drops(sagemaker.trace) == [("x", "max_adapters")]


def test_prompt_instructions_go_before_an_existing_system_message() -> None:
    messages = (Message("system", "Be brief."), Message("user", "hi"))
    adapters = [
        AdapterUse("p1", 0.3, "prompt", prompt_instructions="Answer in French."),
        AdapterUse("p2", 0.6, "prompt", prompt_instructions="You write Python."),
        AdapterUse("p3", 0.5, "prompt"),
    ]
    for caps in (OPENAI, LOCAL):
        plan = plan_adapters(caps, messages, adapters)
        assert plan.messages == (
            Message("system", "You write Python.\n\nAnswer in French.\n\nBe brief."),
            Message("user", "hi"),
        )
        assert plan.body == {}
        assert [t for t in plan.trace if t["event"] == "prompt_injected"] == [
            {"event": "prompt_injected", "id": "p2"},
            {"event": "prompt_injected", "id": "p1"},
        ]
        assert _drops(plan.trace) == [("p3", "no_prompt_instructions")]
        assert {a.how for a in plan.applied} == {"prompt"}


def test_a_system_message_is_inserted_when_there_is_none() -> None:
    assert inject_instructions(HELLO, ["Be kind."]) == (Message("system", "Be kind."), *HELLO)
    assert inject_instructions(HELLO, []) == HELLO


def test_hybrid_on_an_api_backend_injects_always_and_passes_a_remote_id_when_supported() -> None:
    coder = AdapterUse(
        "coder",
        0.9,
        "hybrid",
        prompt_instructions="You are a coding assistant.",
        remote_adapter_id="user-123/code-lora",
        remote_model_id="ft:coder",
    )
    for caps, body, how in (
        (LORAX, {"adapter_id": "user-123/code-lora"}, "adapter_param"),
        (OPENAI, {"model": "ft:coder"}, "model_id"),
    ):
        plan = plan_adapters(caps, HELLO, [coder])
        assert plan.messages[0] == Message("system", "You are a coding assistant.")
        assert plan.body == body
        assert [a.how for a in plan.applied] == [how, "prompt"]
        assert plan.trace == ({"event": "prompt_injected", "id": "coder"},)
    prompt_only = AdapterUse("p", 0.9, "hybrid", prompt_instructions="Be terse.")
    plan = plan_adapters(OPENAI, HELLO, [prompt_only])
    assert plan.body == {} and [a.how for a in plan.applied] == ["prompt"]
    empty = plan_adapters(OPENAI, HELLO, [AdapterUse("e", 0.5, "hybrid")])
    assert _drops(empty.trace) == [("e", "no_remote_id")] and empty.messages == HELLO


def test_hybrid_on_the_local_backend_uses_weights_and_falls_back_to_its_prompt() -> None:
    adapters = [
        AdapterUse("h1", 0.9, "hybrid", version=2, prompt_instructions="Hybrid one."),
        AdapterUse("l1", 0.8, "local"),
        AdapterUse("l2", 0.7, "local", version=5),
        AdapterUse("h2", 0.1, "hybrid", prompt_instructions="Fallback prompt."),
        AdapterUse("l3", 0.05, "local"),
    ]
    plan = plan_adapters(LOCAL, HELLO, adapters)
    assert plan.body == {
        "adapters": [
            {"id": "h1", "weight": 0.9, "version": 2},
            {"id": "l1", "weight": 0.8, "version": None},
            {"id": "l2", "weight": 0.7, "version": 5},
        ]
    }
    # h1 runs as LoRA (no prompt); h2 did not fit, so its prompt stands in for it.
    assert plan.messages[0] == Message("system", "Fallback prompt.")
    assert _drops(plan.trace) == [("h2", "max_adapters"), ("l3", "max_adapters")]
    assert {"event": "prompt_injected", "id": "h2"} in plan.trace
    assert [(a.id, a.how, a.version) for a in plan.applied] == [
        ("h1", "lora", 2),
        ("l1", "lora", None),
        ("l2", "lora", 5),
        ("h2", "prompt", None),
    ]


def test_equal_gates_keep_the_routers_order() -> None:
    adapters = [AdapterUse(n, 0.5, "remote", remote_model_id=f"ft:{n}") for n in "abc"]
    plan = plan_adapters(OPENAI, HELLO, adapters)
    assert plan.body == {"model": "ft:a"}
    assert _drops(plan.trace) == [("b", "max_adapters"), ("c", "max_adapters")]
