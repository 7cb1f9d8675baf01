"""Continuous batching on the real model: equivalence, sampling, stops, limits, cancellation."""

from __future__ import annotations

import time

import pytest

from shared.neural.convert import ensure_weights
from shared.neural.engine import Engine, EngineBusy
from shared.neural.generate import greedy
from shared.neural.model import build_model
from shared.neural.sampling import SamplingParams
from shared.neural.tokenizer import ChatMessage
from shared.neural.weights import load_checkpoint
from tests.helpers import Collector

GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


@pytest.fixture(scope="module")
def engine(lm, settings):
    tokenizer = lm[3]
    checkpoint = load_checkpoint(ensure_weights(settings.weights_dir))
    engine = Engine(
        build_model(checkpoint.config, checkpoint.tensors),
        decode_text=tokenizer.decode,
        stop_token_ids=[tokenizer.im_end_id],
        slots=4,
        max_seq_len=256,
        queue_size=4,
        prefill_buckets=(32, 64, 128),
    )
    engine.start()
    yield engine
    engine.stop(drain=False)


def _prompt(lm, question: str) -> list[int]:
    return lm[3].encode_chat([ChatMessage("user", question)])


def _run(engine, prompt, params) -> Collector:
    collector = Collector()
    engine.submit(prompt, params, collector)
    return collector


def test_concurrent_requests_equal_each_prompt_alone(engine, lm) -> None:
    config, state, step, tokenizer = lm
    questions = [
        "What is the capital of France?",
        "Name a primary color.",
        "Write one sentence about the sea, please, in a calm tone.",
        "What is the capital of Japan?",
    ]
    prompts = [_prompt(lm, q) for q in questions]
    collectors = [_run(engine, p, GREEDY) for p in prompts]
    results = [c.wait() for c in collectors]
    expected = [
        greedy(step, state, config, [p], max_new_tokens=24, stop_id=tokenizer.im_end_id)[0]
        for p in prompts
    ]
    assert [r.text for r in results] == [tokenizer.decode(e) for e in expected]
    assert (
        results[0].text == "The capital of France is Paris." and results[0].finish_reason == "stop"
    )
    for collector, result in zip(collectors, results, strict=True):
        assert "".join(t.text for t in collector.tokens) == result.text  # deltas add up


def test_requests_in_scattered_slots_decode_as_a_narrow_batch(engine, lm) -> None:
    """Slots 0 and 2 stay live after slots 1 and 3 finish: decode then runs a batch of two
    gathered rows (not all four slots), and each answer still equals its prompt alone."""
    config, state, step, tokenizer = lm
    questions = ["What is the capital of France?", "Hi", "What is the capital of Japan?", "Hey"]
    prompts = [_prompt(lm, q) for q in questions]
    budgets = [24, 1, 24, 2]
    collectors = [
        _run(engine, p, SamplingParams(temperature=0.0, max_tokens=n))
        for p, n in zip(prompts, budgets, strict=True)
    ]
    results = [c.wait() for c in collectors]
    for prompt, budget, result in zip(prompts, budgets, results, strict=True):
        alone = greedy(
            step, state, config, [prompt], max_new_tokens=budget, stop_id=tokenizer.im_end_id
        )[0]
        assert result.text == tokenizer.decode(alone)
    assert results[0].text == "The capital of France is Paris."
    assert engine.decode_widths[2] > 0


def test_a_seed_is_deterministic_and_independent_of_the_batch(engine, lm) -> None:
    prompt = _prompt(lm, "Tell me a short story about a fox.")
    params = SamplingParams(temperature=0.9, top_p=0.95, top_k=50, max_tokens=20, seed=1234)
    alone = _run(engine, prompt, params).wait().text
    busy = [
        _run(
            engine,
            _prompt(lm, "Describe the ocean."),
            SamplingParams(temperature=1.0, max_tokens=20, seed=s),
        )
        for s in (1, 2)
    ]
    with_others = _run(engine, prompt, params).wait().text
    for other in busy:
        other.wait()
    assert with_others == alone
    other_seed = (
        _run(
            engine,
            prompt,
            SamplingParams(temperature=0.9, top_p=0.95, top_k=50, max_tokens=20, seed=99),
        )
        .wait()
        .text
    )
    assert other_seed != alone


def test_stop_strings_and_max_tokens(engine, lm) -> None:
    prompt = _prompt(lm, "What is the capital of France?")
    stopped = _run(
        engine, prompt, SamplingParams(temperature=0.0, max_tokens=24, stop=(" Paris",))
    ).wait()
    assert stopped.text == "The capital of France is" and stopped.finish_reason == "stop"
    limited = _run(engine, prompt, SamplingParams(temperature=0.0, max_tokens=3)).wait()
    assert limited.finish_reason == "length" and limited.completion_tokens == 3


def test_max_decode_ms_returns_partial_text_marked_truncated(engine, lm) -> None:
    prompt = _prompt(lm, "Write a long essay about the history of Rome.")
    result = _run(
        engine, prompt, SamplingParams(temperature=0.0, max_tokens=200, max_decode_ms=1)
    ).wait()
    assert result.finish_reason == "timeout" and result.truncated
    assert 1 <= result.completion_tokens < 200


def test_cancel_mid_stream_frees_the_slot_with_the_partial_text(engine, lm) -> None:
    prompt = _prompt(lm, "Write a long essay about the history of Rome.")
    collector = Collector()
    request_id = engine.submit(prompt, SamplingParams(temperature=0.0, max_tokens=200), collector)
    deadline = time.monotonic() + 60
    while len(collector.tokens) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.cancel(request_id)
    result = collector.wait()
    assert result.finish_reason == "cancelled" and result.truncated
    assert 3 <= result.completion_tokens < 200
    assert result.text.startswith("".join(t.text for t in collector.tokens[:3]))
    deadline = time.monotonic() + 10
    while engine.active_slots and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.active_slots == 0
    assert not engine.cancel(request_id)  # already gone


def test_a_full_admission_queue_answers_busy_and_a_late_joiner_finishes_first(engine, lm) -> None:
    long = SamplingParams(temperature=0.0, max_tokens=120)
    prompt = _prompt(lm, "Write a long essay about the history of Rome.")
    running = []
    for _ in range(engine.slots):  # fill every slot, one admission at a time
        running.append(_run(engine, prompt, long))
        deadline = time.monotonic() + 60
        while engine.queue_depth and time.monotonic() < deadline:
            time.sleep(0.005)
    waiting = [
        _run(engine, prompt, SamplingParams(temperature=0.0, max_tokens=2))
        for _ in range(engine.queue_size)
    ]
    with pytest.raises(EngineBusy) as busy:
        engine.submit(prompt, long, Collector())
    assert busy.value.retry_after_s >= 1
    # Waiting requests join as soon as a slot frees: they finish while others still run.
    first_short = waiting[0].wait()
    assert first_short.completion_tokens == 2
    for collector in running + waiting:
        collector.wait()


def test_prompts_that_cannot_fit_are_refused(engine) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        engine.submit([1] * 200, SamplingParams(max_tokens=100), Collector())
    with pytest.raises(ValueError, match="empty"):
        engine.submit([], GREEDY, Collector())
