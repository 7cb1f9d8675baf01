"""Several decode steps per device call, on a tiny random model: the same tokens as one step at
a time, stops and budgets inside a call, host-sampled rows beside device-sampled ones, batched
prefill, and a seed's text independent of the horizon."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from shared.neural.config import LlamaConfig
from shared.neural.engine import DoneEvent, Engine, TokenEvent
from shared.neural.generate import greedy
from shared.neural.model import build_model, forward_fn
from shared.neural.sampling import SamplingParams

TINY = LlamaConfig(
    vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, max_seq_len=512
)


class Stream:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.done = threading.Event()
        self.result: DoneEvent | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, TokenEvent):
            self.ids.append(event.token_id)
        elif isinstance(event, DoneEvent):
            self.result = event
            self.done.set()

    def wait(self) -> DoneEvent:
        assert self.done.wait(120), "the engine did not finish the request"
        assert self.result is not None
        return self.result


def _engine(
    horizon: int, *, stop: tuple[int, ...] = (), prefill_rows: int = 2, start: bool = True
) -> Engine:
    engine = Engine(
        build_model(TINY, seed=3),
        decode_text=lambda ids: " ".join(map(str, ids)),
        stop_token_ids=stop,
        slots=4,
        max_seq_len=256,
        prefill_buckets=(32, 64),
        horizon=horizon,
        prefill_rows=prefill_rows,
    )
    if start:
        engine.start()
    return engine


@pytest.fixture(scope="module")
def reference():
    state, step = forward_fn(build_model(TINY, seed=3))

    def run(prompt: list[int], n: int) -> list[int]:
        return greedy(step, state, TINY, [prompt], max_new_tokens=n, stop_id=-1)[0]

    return run


def _prompts(n: int) -> list[list[int]]:
    rng = np.random.default_rng(1)
    return [
        rng.integers(0, TINY.vocab_size, int(length)).tolist() for length in rng.integers(5, 60, n)
    ]


def _submit(engine: Engine, prompt: list[int], params: SamplingParams) -> Stream:
    stream = Stream()
    engine.submit(prompt, params, stream)
    return stream


def test_many_steps_per_call_give_each_prompts_greedy_tokens(reference) -> None:
    engine = _engine(horizon=8)
    try:
        prompts, budgets = _prompts(6), [30, 3, 17, 30, 1, 9]
        streams = [
            _submit(engine, p, SamplingParams(temperature=0.0, max_tokens=n))
            for p, n in zip(prompts, budgets, strict=True)
        ]
        for stream, prompt, budget in zip(streams, prompts, budgets, strict=True):
            result = stream.wait()
            assert stream.ids == reference(prompt, budget)
            assert result.finish_reason == "length" and result.completion_tokens == budget
        assert max(engine.decode_steps) > 1  # calls ran several steps
    finally:
        engine.stop(drain=False)


def test_a_stop_token_inside_a_call_ends_the_row_there(reference) -> None:
    prompt = _prompts(1)[0]
    expected = reference(prompt, 12)
    stop = expected[5]
    first = expected.index(stop)
    engine = _engine(horizon=8, stop=(stop,))
    try:
        stream = _submit(engine, prompt, SamplingParams(temperature=0.0, max_tokens=12))
        result = stream.wait()
        assert result.finish_reason == "stop" and stream.ids == expected[:first]
    finally:
        engine.stop(drain=False)


def test_a_biased_row_samples_on_the_host_beside_device_rows(reference) -> None:
    engine = _engine(horizon=8)
    try:
        prompts = _prompts(2)
        plain = _submit(engine, prompts[0], SamplingParams(temperature=0.0, max_tokens=20))
        forced = _submit(
            engine,
            prompts[1],
            SamplingParams(temperature=0.0, max_tokens=6, logit_bias=((7, 100.0),)),
        )
        assert forced.wait().completion_tokens == 6 and forced.ids == [7] * 6
        plain.wait()
        assert plain.ids == reference(prompts[0], 20)
        assert engine.decode_steps[1] > 0  # the biased row's calls ran one step
    finally:
        engine.stop(drain=False)


def test_a_seed_gives_the_same_text_whatever_the_horizon() -> None:
    prompt = _prompts(1)[0]
    params = SamplingParams(temperature=0.9, top_p=0.9, top_k=40, max_tokens=24, seed=77)
    texts = []
    for horizon in (1, 8):
        engine = _engine(horizon=horizon, prefill_rows=1)
        try:
            texts.append(_submit(engine, prompt, params).wait().text)
        finally:
            engine.stop(drain=False)
    assert texts[0] == texts[1]


def test_prompts_of_one_bucket_prefill_together(reference) -> None:
    engine = _engine(horizon=4, prefill_rows=4, start=False)
    try:
        prompts = [p[:20] for p in _prompts(8) if len(p) >= 20][:3]
        streams = [
            _submit(engine, p, SamplingParams(temperature=0.0, max_tokens=5)) for p in prompts
        ]
        engine.start()  # all three are waiting: one call prefills them
        for stream, prompt in zip(streams, prompts, strict=True):
            stream.wait()
            assert stream.ids == reference(prompt, 5)
        assert engine.prefill_calls == {4: 1}  # three prompts, padded to a batch of four
    finally:
        engine.stop(drain=False)
