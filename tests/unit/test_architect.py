"""The architect's prompt and its defensive reading of the model's answer (no I/O)."""

from __future__ import annotations

import json

import pytest

from shared.domain.configops import architect
from shared.domain.configops.architect_prompt import (
    MAX_ARTIFACT_CHARS,
    MAX_METRICS_CHARS,
    Target,
    brief,
    build,
    example,
    first_json,
    problem_kind,
    read,
)
from shared.domain.llm.backend import TokenCount
from shared.platform.settings import Settings

POLICY = Target("11111111-1111-1111-1111-111111111111", "default_user_routing", "policy.routing",
                3, {"kind": "policy.routing", "weight_floor": 0.05, "rules": []})  # fmt: skip
WORKFLOW = Target("22222222-2222-2222-2222-222222222222", "default_chat", "workflow.chat", 1,
                  {"kind": "workflow.chat", "entrypoint": "a", "nodes": []})  # fmt: skip
TARGETS = [POLICY, WORKFLOW]
OP = {"op": "replace", "path": "/weight_floor", "value": 0.2}


def test_the_prompt_shows_metrics_the_artifact_its_version_and_the_answer_form() -> None:
    metrics = {"window_days": 7.0, "turns": 12, "rules": {"always_persona": {"fired": 12}}}
    system, user = build(metrics, POLICY, max_proposals=2)
    assert system.role == "system" and "JSON" in system.content
    assert user.role == "user"
    text = user.content
    assert "last 7.0 days" in text and '"always_persona"' in text
    assert "default_user_routing (policy.routing, version 3)" in text
    assert '"weight_floor":0.05' in text  # compact JSON
    assert "at most 2 changes to the artifact default_user_routing" in text
    assert text.endswith("Your JSON array:")
    assert '"artifact":"default_user_routing"' in text and "/weight_floor" in text
    _, about_workflow = build(metrics, WORKFLOW, max_proposals=2)
    assert "default_chat (workflow.chat, version 1)" in about_workflow.content
    assert '"artifact":"default_chat"' in about_workflow.content
    assert "default_user_routing" not in about_workflow.content


def test_the_prompt_stays_bounded_however_large_an_artifact_is() -> None:
    huge = Target(POLICY.artifact_id, POLICY.name, POLICY.kind, 1,
                  {"kind": "policy.routing", "rules": ["x" * 100] * 500})  # fmt: skip
    metrics = {"window_days": 7.0, "nodes": {f"n{i}": {"ran": i} for i in range(2000)}}
    _, user = build(metrics, huge, max_proposals=3)
    assert len(user.content) < MAX_ARTIFACT_CHARS + MAX_METRICS_CHARS + 600


def test_brief_metrics_keep_the_largest_rows_or_only_the_totals() -> None:
    metrics = {"window_days": 7.0, "turns": 9, "rules": {"a": 5, "b": 3, "c": 1}}
    assert brief(metrics, 2) == {"window_days": 7.0, "turns": 9, "rules": {"a": 5, "b": 3}}
    assert brief(metrics, 0) == {"window_days": 7.0, "turns": 9}


class Counting:
    """count_tokens as a model with a `window` would answer: a token per 4 characters."""

    def __init__(self, window: int) -> None:
        self.window = window

    async def count_tokens(self, messages) -> TokenCount:
        return TokenCount(sum(len(m.content) for m in messages) // 4, self.window)

    async def complete(self, *args, **kwargs):  # never called here
        raise AssertionError


async def test_the_prompt_is_cut_down_until_it_fits_the_window() -> None:
    metrics = {"window_days": 7.0, "turns": 9,
               "rules": {f"rule_{i}": {"fired": i, "evaluated": 99} for i in range(8)}}  # fmt: skip
    settings = Settings(architect_max_tokens=384)
    full, budget = await architect._fit(Counting(4096), metrics, POLICY, settings)
    assert budget == 384 and "rule_7" in full[1].content
    small = sum(len(m.content) for m in build(brief(metrics, 0), POLICY, max_proposals=3)) // 4
    cut, budget = await architect._fit(Counting(small + 60), metrics, POLICY, settings)
    assert "rule_0" not in cut[1].content and budget == 59
    assert await architect._fit(Counting(small + 10), metrics, POLICY, settings) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"a": 1}]', [{"a": 1}]),
        ('Sure! Here it is:\n```json\n[{"a": 1}]\n```\nHope it helps.', [{"a": 1}]),
        ('{"a": [1, 2]} and then [3]', {"a": [1, 2]}),
        ("a stray [bracket then [1, 2]", [1, 2]),
        ("no json at all", None),
        ('[{"a": 1}, {"b": 2}, {"c"', [{"a": 1}, {"b": 2}]),  # cut off by the token budget
        ('[{"c"', None),
        ("", None),
    ],
)
def test_first_json_takes_the_first_complete_array_or_object(text, expected) -> None:
    assert first_json(text) == expected


def test_a_well_formed_answer_gives_candidates_in_order() -> None:
    answer = json.dumps([
        {"artifact": "default_user_routing", "patch": [OP], "justification": "  floor up  "},
        {"artifact": "workflow.chat", "patch": [{"op": "remove", "path": "/nodes/0"}]},
    ])  # fmt: skip
    reading = read(answer, TARGETS)
    assert reading.found and reading.unusable == [] and reading.items == 2
    first, second = reading.candidates
    assert first.target is POLICY and first.patch == [OP] and first.justification == "floor up"
    assert second.target is WORKFLOW and second.justification is None  # named by its kind


def test_lenient_shapes_are_read_and_unusable_items_are_counted_with_reasons() -> None:
    answer = json.dumps({"proposals": [
        {"artifact": "default_user_routing", "patch": OP},  # one op, not in a list
        {"artifact": "default_user_routing", "patch": [OP]},  # the same again
        {"patch": [OP]},
        {"artifact": "policy.other", "patch": [OP]},
        {"artifact": "default_chat", "patch": "remove node b"},
        {"artifact": "default_chat", "patch": [1, 2]},
        "just text",
    ]})  # fmt: skip
    reading = read(answer, TARGETS)
    assert [c.patch for c in reading.candidates] == [[OP]]
    assert reading.unusable == [
        "repeats an earlier proposal",
        "names no artifact",
        "names an artifact it was not shown",
        "has no patch (a list of operations)",
        "has no patch (a list of operations)",
        "not an object",
    ]
    assert reading.items == 7


def test_a_single_object_is_one_proposal_and_prose_is_unparsable() -> None:
    one = read('{"artifact": "default_chat", "patch": [{"op": "add", "path": "/x", "value": 1}]}',
               TARGETS)  # fmt: skip
    assert one.found and len(one.candidates) == 1
    prose = read("I think the routing policy is fine as it is.", TARGETS)
    assert not prose.found and prose.items == 0
    empty = read("[]", TARGETS)
    assert empty.found and empty.items == 0
    scalar = read("42", TARGETS)  # JSON, but no array or object
    assert not scalar.found


def test_asked_about_one_artifact_a_proposal_need_not_name_it() -> None:
    bare = read(json.dumps([OP, {"op": "remove", "path": "/rules/0"}]), [POLICY])
    assert [c.patch for c in bare.candidates] == [[OP, {"op": "remove", "path": "/rules/0"}]]
    unnamed = read(json.dumps([{"patch": [OP]}]), [POLICY])
    assert unnamed.candidates[0].target is POLICY
    other = read(json.dumps([{"artifact": "default_chat", "patch": [OP]}]), [POLICY])
    assert other.unusable == ["names an artifact it was not shown"]


def test_a_copy_of_the_example_is_no_proposal() -> None:
    copied = read(json.dumps(example(POLICY)), [POLICY])
    assert copied.candidates == [] and copied.unusable == ["copies the example"]


def test_an_overlong_justification_is_cut() -> None:
    answer = json.dumps([{"artifact": "default_chat", "patch": [OP], "justification": "x" * 5000}])
    (candidate,) = read(answer, TARGETS).candidates
    assert candidate.justification is not None and len(candidate.justification) == 1000


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("operation 0: can't replace a non-existent object 'foo'", "does_not_apply"),
        ("a patch is a non-empty list of RFC 6902 operations", "does_not_apply"),
        ("the patch changes nothing", "no_change"),
        ("stale base: the artifact is at version 4, not 3", "stale_base"),
        ("expression does not compile: unknown name 'x'", "expression"),
        ("no tool.spec named 'web.search' is visible here", "reference"),
        ("names no node of this workflow: 'n9'", "reference"),
        ("duplicate rule id 'a'", "duplicate_id"),
        ("'when' is a required property", "schema"),
    ],
)
def test_problems_are_counted_by_kind(message, kind) -> None:
    assert problem_kind({"path": "/rules/0", "message": message}) == kind
