"""The artifact kinds' JSON Schemas: valid Draft 2020-12, accepting what the system itself
writes (the seeds, `adapter_schema`), refusing bad shapes with JSON-pointer paths."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from shared.domain.adapters.objects import version_prefix
from shared.domain.adapters.registry import AdapterFiles, adapter_schema
from shared.domain.artifacts.checks import tool_schema_problems
from shared.domain.artifacts.kinds import (
    KINDS,
    MAX_PROBLEMS,
    USER_KINDS,
    json_schema,
    pointer,
    schema_problems,
    type_matches,
    validate,
)
from shared.neural import peft
from shared.neural.lora import LoraWeights
from shared.platform.errors import ValidationError
from shared.platform.settings import REPO_ROOT

SEED = REPO_ROOT / "sql" / "seed" / "001_default_artifacts.sql"
# ('type', 'name', 'description', '{json}'::jsonb) rows of the seed's VALUES list.
_ROW = re.compile(
    r"\(\s*'([a-z_.]+)',\s*'((?:[^']|'')*)',\s*'((?:[^']|'')*)',\s*'((?:[^']|'')*)'::jsonb\)"
)

WORKFLOW = {
    "kind": "workflow.chat",
    "entrypoint": "route",
    "nodes": [
        {"id": "route", "type": "switch", "branches": [{"when": "true", "next": "both"}]},
        {"id": "both", "type": "parallel", "children": ["a", "b"], "next": "end"},
        {"id": "a", "type": "tool_call", "tool": "llm.generic_chat_v1", "outputs": ["answer"]},
        {"id": "b", "type": "tool_call", "tool": "llm.intent_classifier_v1", "on_error": "end"},
        {"id": "end", "type": "end"},
    ],
}


def seeded() -> list[tuple[str, str, dict]]:
    rows = _ROW.findall(SEED.read_text())
    assert len(rows) >= 6
    return [(t, n.replace("''", "'"), json.loads(s.replace("''", "'"))) for t, n, _, s in rows]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_valid_draft_2020_12_schema(kind: str) -> None:
    schema = json_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["kind"] == {"const": kind}


def test_kinds() -> None:
    assert set(KINDS) == {"workflow.chat", "policy.routing", "tool.spec", "adapter.lora",
                          "context.knowledge", "memory.summary"}  # fmt: skip
    assert "adapter.lora" not in USER_KINDS


def test_the_seeded_artifacts_validate_and_their_type_is_their_kind() -> None:
    names = set()
    for artifact_type, name, schema in seeded():
        assert validate(schema) == artifact_type, name
        assert artifact_type == schema["kind"]
        if artifact_type == "tool.spec":
            assert schema["name"] == name
            assert tool_schema_problems(schema) == []
        names.add(name)
    assert "memory.summarize_v1" in names


def test_what_adapter_schema_writes_validates() -> None:
    weights = LoraWeights(
        rank=4, alpha=8.0,
        tensors={(0, "q"): (np.zeros((4, 576), np.float32), np.zeros((576, 4), np.float32))},
    )  # fmt: skip
    adapter_id = "8c6f2d9e-5b1a-4e1f-9a53-0c6a3c1f4b2d"
    owner = "3f1c0a52-7d7e-4f43-8d87-2b9e6f1a0c11"
    for adapter_type in ("persona", "skill", "domain", "style"):
        schema = adapter_schema(
            AdapterFiles(*peft.dump_with_checksum(weights)),
            prefix=version_prefix(owner, adapter_id, 3), adapter_type=adapter_type, version=3,
        )  # fmt: skip
        assert (schema["rank"], schema["alpha"], schema["target_modules"]) == (4, 8.0, ["q_proj"])
        assert validate(schema) == "adapter.lora"
    remote = {
        "kind": "adapter.lora", "mode": "hybrid", "remote_adapter_id": "u/lora",
        "prompt_instructions": "Be brief.", "weight": 0.9, "cluster_id": None,
        "applicability": {"natural_language": "debugging", "embedding_centroid": None},
    }  # fmt: skip
    assert validate(remote) == "adapter.lora"
    assert schema_problems({**remote, "mode": "cloud"})[0]["path"] == "/mode"


def test_a_trained_skill_version_validates() -> None:
    """What the train function publishes (the registry's fields, the job's record, a skill's
    binding) is a valid adapter.lora: ConfigOps validates it when it disables or merges one."""
    from functions.train import skill

    weights = LoraWeights(
        rank=4, alpha=8.0,
        tensors={(0, "q"): (np.zeros((4, 576), np.float32), np.zeros((576, 4), np.float32))},
    )  # fmt: skip
    adapter_id = "8c6f2d9e-5b1a-4e1f-9a53-0c6a3c1f4b2d"
    base = adapter_schema(
        AdapterFiles(*peft.dump_with_checksum(weights)),
        prefix=version_prefix(None, adapter_id, 2), adapter_type="skill", version=2,
    )  # fmt: skip
    binding = {"cluster_id": "0c1a5e00-0000-4000-8000-00000000000a", "status": "disabled",
               "applicability": {"natural_language": "Skill: pasta"}}  # fmt: skip
    target = skill.Target("skill-pasta", "skill", None, binding=binding)
    extra = skill.extra_schema(
        target,
        job_id=adapter_id,
        promoted=True,
        metrics={"heldout": {}},
        training_config={"format": "x"},
    )
    assert schema_problems({**base, **extra}) == []


def test_workflow_shapes() -> None:
    assert validate(WORKFLOW) == "workflow.chat"
    paths = lambda schema: [p["path"] for p in schema_problems(schema)]  # noqa: E731
    bad = copy.deepcopy(WORKFLOW)
    bad["nodes"][2]["type"] = "shell"
    assert paths(bad) == ["/nodes/2/type"]
    bad = copy.deepcopy(WORKFLOW)
    del bad["nodes"][2]["tool"], bad["nodes"][0]["branches"], bad["nodes"][1]["children"]
    assert paths(bad) == ["/nodes/0", "/nodes/1", "/nodes/2"]  # required by node type
    assert "'tool' is a required property" in schema_problems(bad)[2]["message"]
    bad = copy.deepcopy(WORKFLOW)
    bad["nodes"][4]["id"] = "no spaces allowed"
    bad["nodes"][3]["max_retries"] = 4
    bad["nodes"][3]["timeout_ms"] = 60_001
    bad["nodes"][3]["surprise"] = True
    assert paths(bad) == ["/nodes/3", "/nodes/3/max_retries", "/nodes/3/timeout_ms",
                          "/nodes/4/id"]  # fmt: skip
    assert paths({**WORKFLOW, "timeout_ms": 999}) == ["/timeout_ms"]
    assert paths({**WORKFLOW, "nodes": []}) == ["/nodes"]
    many = {**WORKFLOW, "nodes": [{"id": f"n{i}", "type": "shell"} for i in range(40)]}
    assert len(schema_problems(many)) == MAX_PROBLEMS


def test_policy_shapes() -> None:
    policy = seeded()[1][2]
    assert validate(policy) == "policy.routing"
    rule = {"id": "r", "when": "true", "action": {"type": "activate_adapter_by_id"}}
    problems = schema_problems({**policy, "rules": [rule], "max_active_adapters": 4})
    assert [p["path"] for p in problems] == ["/max_active_adapters", "/rules/0/action"]
    weighted = {"id": "r", "when": "true",
                "action": {"type": "activate_adapter_by_type", "adapter_type": "persona",
                           "weight": 1.5}}  # fmt: skip
    assert [p["path"] for p in schema_problems({**policy, "rules": [weighted]})] == [
        "/rules/0/action/weight"
    ]
    current = {"id": "r", "when": "x", "action": {"type": "deactivate_adapter",
                                                  "adapter_id": "current"}}  # fmt: skip
    assert validate({**policy, "rules": [current]}) == "policy.routing"


def test_other_kinds_and_errors() -> None:
    with pytest.raises(ValidationError) as raised:
        validate({"kind": "workflow.dag", "nodes": []})
    assert raised.value.details == [{"path": "/kind", "message": raised.value.details[0][
        "message"]}]  # fmt: skip
    assert "not a known kind" in raised.value.details[0]["message"]
    assert schema_problems([1])[0]["path"] == ""
    assert schema_problems({})[0]["path"] == "/kind"
    knowledge = {"kind": "context.knowledge", "name": "docs", "chunk_tokens": 400,
                 "chunk_overlap": 40, "pii_scrub": True, "file_ids": []}  # fmt: skip
    assert validate(knowledge) == "context.knowledge"
    assert schema_problems({**knowledge, "chunk_tokens": 10})[0]["path"] == "/chunk_tokens"
    memory = {"kind": "memory.summary", "conversation_id": "8c6f2d9e-5b1a-4e1f-9a53-0c6a3c1f4b2d",
              "summary": "s", "covers_until_seq": 4, "token_count": 2}  # fmt: skip
    assert validate(memory) == "memory.summary"
    assert schema_problems({**memory, "summary": "x" * 20_001})[0]["path"] == "/summary"
    tool = {"kind": "tool.spec", "name": "Bad Name", "input_schema": {}, "output_schema": {}}
    assert schema_problems(tool)[0]["path"] == "/name"
    broken = {**tool, "name": "x.y", "input_schema": {"type": "nonsense"}}
    assert tool_schema_problems(broken)[0]["path"] == "/input_schema/type"


def test_pointer_and_type_family() -> None:
    assert pointer(("a/b", "c~d", 3)) == "/a~1b/c~0d/3"
    assert pointer(()) == ""
    assert type_matches("workflow.chat", "workflow")
    assert type_matches("workflow.chat", "workflow.chat")
    assert not type_matches("workflow.chat", "work")
    assert not type_matches("workflow.chat", "chat")
