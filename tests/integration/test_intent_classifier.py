"""`llm.intent_classifier_v1` against the real inference service (MiniLM + SmolLM2): accuracy on
the committed, labelled evaluation set `tests/data/intents_eval.jsonl`.

Run with `-s` to see the report (overall and per-label accuracy, the confusion pairs, and how
many answers the LLM tie-break decided). The messages are embedded in batches, so the run costs
one embedding call per 64 messages plus one short greedy completion per close call.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.domain.llm.local import LocalInferenceBackend
from shared.domain.tools.base import ToolContext
from shared.domain.tools.intent import IntentClassifier, classify_intent
from shared.platform.settings import Settings
from tests.integration.conftest import TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# Fixed before the exemplars and the tie-break threshold were written or tuned (the issue asks
# for the bar first): tuning may only move accuracy above it, never move it to pass.
ACCURACY_FLOOR = 0.70

EVAL_SET = Path(__file__).resolve().parents[1] / "data" / "intents_eval.jsonl"


def _eval_rows() -> list[dict[str, str]]:
    with EVAL_SET.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _backend(url: str) -> LocalInferenceBackend:
    settings = Settings(
        inference_url=url,
        inference_token=SecretStr(TOKEN),
        _env_file=None,  # type: ignore[call-arg]
    )
    return LocalInferenceBackend(settings)


def _report(rows: list[dict[str, str]], predicted: list[dict]) -> float:
    total, right = Counter[str](), Counter[str]()
    confusions = Counter[tuple[str, str]]()
    for row, result in zip(rows, predicted, strict=True):
        total[row["intent"]] += 1
        if result["intent"] == row["intent"]:
            right[row["intent"]] += 1
        else:
            confusions[(row["intent"], result["intent"])] += 1
    accuracy = sum(right.values()) / len(rows)
    methods = Counter(result["method"] for result in predicted)
    print(f"\nintent accuracy: {accuracy:.3f} ({sum(right.values())}/{len(rows)}), "
          f"floor {ACCURACY_FLOOR:.2f}; methods: {dict(methods)}")  # fmt: skip
    for label in sorted(total):
        print(f"  {label:<18} {right[label] / total[label]:.3f} ({right[label]}/{total[label]})")
    for (expected, got), count in confusions.most_common():
        print(f"  confused {expected} -> {got}: {count}")
    for row, result in zip(rows, predicted, strict=True):
        if result["intent"] != row["intent"]:
            print(f"    [{row['intent']} -> {result['intent']} {result['method']} "
                  f"{result['confidence']:.2f}] {row['text'][:80]!r}")  # fmt: skip
    return accuracy


async def test_accuracy_on_the_evaluation_set(service) -> None:
    rows = _eval_rows()
    assert len(rows) >= 60 and min(Counter(r["intent"] for r in rows).values()) >= 10
    backend = _backend(service)
    classifier = IntentClassifier()
    assert {r["intent"] for r in rows} == set(classifier.intents.labels)
    try:
        predicted = await classifier.classify_many(
            [r["text"] for r in rows], backend, request_id="intent-eval"
        )
    finally:
        await backend.aclose()
    assert all(0.0 <= p["confidence"] <= 1.0 for p in predicted)
    assert _report(rows, predicted) >= ACCURACY_FLOOR


async def test_the_tool_with_a_workflows_own_intents(service) -> None:
    """Through the tool entry point, as a workflow node calls it, with labels of its own."""
    backend = _backend(service)
    labels = {
        "billing": {
            "description": "questions about invoices, charges, refunds or payment methods",
            "examples": [
                "I was charged twice this month",
                "how do I update my credit card",
                "can I get a refund for last month",
                "where can I download my invoices",
            ],
        },
        "bug_report": {
            "description": "the user reports that the product is broken or misbehaving",
            "examples": [
                "the app crashes when I open settings",
                "export to PDF does nothing",
                "I get a blank page after logging in",
                "notifications stopped arriving yesterday",
            ],
        },
    }
    ctx = ToolContext(user_id="u-1", request_id="intent-tool-1", backend=backend)
    try:
        refund = await classify_intent(
            {"message": "Please refund the duplicate payment on my card", "labels": labels}, ctx
        )
        crash = await classify_intent(
            {"message": "Every time I press save, the whole app freezes", "labels": labels}, ctx
        )
        builtin = await classify_intent({"message": "Write me a sonnet about the sea"}, ctx)
    finally:
        await backend.aclose()
    assert refund["intent"] == "billing" and crash["intent"] == "bug_report"
    assert builtin["intent"] == "creative_writing"
