"""The train function's dataset (functions/train/dataset.py): each event as one sample (a
correction, else the rated answer, liked or disliked), deduplicated with the newest kept,
oldest first for the hold-out; the JSON lines carry SPEC's fields and what the token cap kept;
the manifest says where every row came from and what was left out. A byte-level tokenizer
stands in for SmolLM2's: no weights needed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from functions.train.dataset import encode, manifest, rows_of, sample_of
from shared.domain.preferences.jobs import Job, TrainingEvent
from shared.neural.tokenizer import IM_END, IM_START, ChatTokenizer
from shared.neural.training import PREFERRED, UNDESIRABLE, holdout_split

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PROMPT = (("system", "Be helpful."), ("user", "What is the capital of France?"))


@pytest.fixture(scope="module")
def tokenizer() -> ChatTokenizer:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in (IM_START, IM_END)]
    )
    return ChatTokenizer(tok)


def _event(event_id: int, signal: str = "like", **fields) -> TrainingEvent:
    values = {
        "id": event_id, "conversation_id": f"c{event_id}", "message_id": f"m{event_id}",
        "explicit_signal": signal, "score": None, "corrected_text": None, "notes": None,
        "context_text": "What is the capital of France?", "answer": f"Paris {event_id}.",
        "updated_at": T0 + dt.timedelta(minutes=event_id),
    }  # fmt: skip
    return TrainingEvent(**{**values, **fields})


def test_a_correction_is_preferred_over_the_answer_it_replaces() -> None:
    sample = sample_of(_event(1, "dislike", score=-1.0, corrected_text=" Answer: Paris. "), PROMPT)
    assert sample is not None
    assert (sample.kind, sample.target, sample.alternative, sample.weight) == (
        PREFERRED, "Answer: Paris.", "Paris 1.", 1.0)  # fmt: skip
    assert sample.messages == PROMPT


def test_likes_are_preferred_dislikes_undesirable_weighted_by_the_score() -> None:
    liked = sample_of(_event(1, "like", score=0.5), PROMPT)
    always = sample_of(_event(2, "always"), PROMPT)
    disliked = sample_of(_event(3, "dislike", score=-0.25), PROMPT)
    never = sample_of(_event(4, "never"), PROMPT)
    assert liked and always and disliked and never
    assert [(s.kind, s.weight) for s in (liked, always, disliked, never)] == [
        (PREFERRED, 0.5), (PREFERRED, 1.0), (UNDESIRABLE, 0.25), (UNDESIRABLE, 1.0)]  # fmt: skip
    # Their alternative (the base's answer) is generated later, for held-out events only.
    assert liked.alternative is None and liked.target == "Paris 1."
    assert sample_of(_event(5, "like", score=0.0), PROMPT) is None  # weight 0: no sample


def test_rows_are_oldest_first_deduplicated_newest_kept_and_say_what_was_left_out() -> None:
    events = [
        _event(1),
        _event(2, message_id="m9", conversation_id="c9"),
        _event(3, message_id="m9", conversation_id="c9"),  # the same answer, rated again
        _event(4, answer="Paris 1."),  # the same prompt and target as event 1
        _event(5),  # no prompt: its conversation is gone
        _event(6, score=0.0),
    ]
    prompts = {e.id: PROMPT for e in events if e.id != 5}
    rows, skipped = rows_of(list(reversed(events)), prompts)
    assert [r.event_id for r in rows] == [3, 4]
    assert {s.event_id: s.reason.split(":")[0] for s in skipped} == {
        1: "duplicate of a newer event", 2: "duplicate of a newer event", 5: "no prompt",
        6: "weight 0 or an empty target"}  # fmt: skip


def test_the_lines_carry_specs_fields_and_what_the_cap_kept(tokenizer) -> None:
    rows, _ = rows_of([_event(1, corrected_text="Answer: Paris."), _event(2)],
                      {1: PROMPT, 2: PROMPT})  # fmt: skip
    lines = [json.loads(line) for line in encode(rows, tokenizer, max_tokens=40)]
    assert [line["event_id"] for line in lines] == [1, 2]
    first = lines[0]
    assert {"prompt", "target", "weight", "context", "conversation_id", "message_id"} <= set(first)
    assert first["prompt"] == (
        f"{IM_START}system\nBe helpful.{IM_END}\n{IM_START}user\nWhat is the capital of France?"
        f"{IM_END}\n{IM_START}assistant\n"
    )
    assert (first["target"], first["alternative"], first["kind"]) == (
        "Answer: Paris.", "Paris 1.", PREFERRED)  # fmt: skip
    # Every byte is a token here: the 40-token cap keeps the target (and its end) whole and
    # the last 25 tokens of the prompt.
    assert first["tokens"] == {"prompt": 40 - 15, "target": 15, "truncated": True}


def test_the_manifest_names_every_source_its_split_and_the_datasets_digest(tokenizer) -> None:
    events = [_event(i) for i in range(1, 6)]
    rows, skipped = rows_of(events, {e.id: PROMPT for e in events if e.id != 5})
    training, heldout = holdout_split(rows)
    data = b"".join(encode(rows, tokenizer, max_tokens=64))
    job = Job(id="j", user_id="u", adapter_id="a", status="running", attempt=2, max_attempts=3,
              step_budget=8, priority=1, preference_event_ids=(1, 2, 3, 4, 5), instructions=(),
              base_version=1, base_has_weights=False, meta={})  # fmt: skip
    body = json.loads(manifest(job, rows, skipped, heldout, data, max_tokens=64, gate=0.5,
                               system_prompt="Be helpful."))  # fmt: skip
    assert body["dataset_sha256"] == hashlib.sha256(data).hexdigest() and body["rows"] == 4
    assert [(s["event_id"], s["split"]) for s in body["sources"]] == [
        (1, "train"), (2, "train"), (3, "heldout"), (4, "heldout")]  # fmt: skip
    assert body["skipped"] == [{"event_id": 5, "reason": skipped[0].reason}]
    assert (body["job_id"], body["attempt"], body["gate"], len(training)) == ("j", 2, 0.5, 2)
