"""The inference service over HTTP, driven by the official `openai` client where it applies."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import numpy as np
import openai
import pytest

from tests.integration.conftest import QUEUE, SLOTS, TOKEN, start_inference, wait_inference_ready

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
ESSAY = [{"role": "user", "content": "Write a long essay about the history of Rome."}]


@pytest.fixture(scope="module")
def client(service) -> openai.OpenAI:
    return openai.OpenAI(base_url=service + "/v1", api_key=TOKEN, max_retries=0)


def test_the_openai_client_streams_a_chat_completion(client) -> None:
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=FRANCE, temperature=0, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The capital of France is Paris."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == 7 and chunks[-1].usage.prompt_tokens == 37


def test_blocking_chat_and_text_completions(client) -> None:
    chat = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=FRANCE, temperature=0, max_tokens=4
    )
    assert chat.choices[0].message.content == "The capital of France"
    assert chat.choices[0].finish_reason == "length" and chat.usage.completion_tokens == 4
    text = client.completions.create(
        model="smollm2-135m-instruct",
        prompt="The capital of France is",
        temperature=0,
        max_tokens=3,
    )
    assert "Paris" in text.choices[0].text


def test_embeddings_through_the_openai_client(client) -> None:
    result = client.embeddings.create(
        model="all-minilm-l6-v2",
        input=[
            "A man is playing a guitar on stage.",
            "Someone performs music with a guitar in front of an audience.",
            "The stock market fell sharply on Monday.",
        ],
    )
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert result.usage.prompt_tokens > 0


def test_models_auth_and_validation(client, service) -> None:
    models = client.models.list().data
    assert [m.id for m in models[:2]] == ["smollm2-135m-instruct", "all-minilm-l6-v2"]
    # Whatever else is listed is a loaded adapter on the base model (other tests load some).
    assert all(m.parent == "smollm2-135m-instruct" for m in models[2:])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=service + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="smollm2-135m-instruct", messages=FRANCE, temperature=5
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=FRANCE)
    assert httpx.get(service + "/healthz").json()["status"] == "ready"


def test_cancel_mid_stream_returns_the_partial_text(service) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "x-request-id": "cancel-me-123456"}
    body = {"messages": ESSAY, "temperature": 0, "max_tokens": 300, "stream": True}
    pieces, finish = [], None
    with httpx.stream(
        "POST", service + "/v1/chat/completions", json=body, headers=headers, timeout=120
    ) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = httpx.Response(200, content=line[6:]).json()
            choice = chunk["choices"][0]
            pieces.append(choice["delta"].get("content") or "")
            if len(pieces) == 3:
                cancelled = httpx.post(
                    service + "/v1/cancel", json={"request_id": "cancel-me-123456"}, headers=headers
                ).json()
                assert cancelled["cancelled"] is True
            if choice["finish_reason"]:
                finish = choice["finish_reason"]
                usage = chunk["usage"]
    assert finish == "cancelled"
    assert 3 <= usage["completion_tokens"] < 300


async def test_a_dropped_stream_does_not_cancel_a_later_request_with_its_id(service) -> None:
    """A chat turn's retries and fallbacks reuse the turn's request id: the client dropping
    one attempt must stop that attempt only."""
    headers = {"Authorization": f"Bearer {TOKEN}", "x-request-id": "shared-id-7f3e2a"}
    body = {"messages": ESSAY, "temperature": 0, "max_tokens": 24, "stream": True}
    async with httpx.AsyncClient(base_url=service, headers=headers, timeout=120) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body) as dropped:
            first = await dropped.aiter_lines().__anext__()
            assert first.startswith("data: ")
            later = asyncio.create_task(
                http.post("/v1/chat/completions", json={**body, "stream": False})
            )
            await asyncio.sleep(0.05)  # the later request is queued or running: now drop
        answer = (await later).json()
    assert answer["choices"][0]["finish_reason"] in ("stop", "length")
    assert answer["usage"]["completion_tokens"] > 0


async def test_a_full_queue_answers_429_with_retry_after(service) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"messages": ESSAY, "temperature": 0, "max_tokens": 200}

    async def gauge(http: httpx.AsyncClient, name: str) -> float:
        for line in (await http.get("/metrics")).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(name)

    async def until(check) -> None:
        for _ in range(600):
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not reached")

    async with httpx.AsyncClient(base_url=service, headers=headers, timeout=300) as http:
        busy = []
        # One at a time, so each is admitted (or queued) before the next arrives.
        for i in range(SLOTS + QUEUE):
            busy.append(
                asyncio.create_task(
                    http.post(
                        "/v1/chat/completions", json=body, headers={"x-request-id": f"fill-{i:08d}"}
                    )
                )
            )
            expected_active, expected_queued = min(i + 1, SLOTS), max(0, i + 1 - SLOTS)

            async def reached(a=expected_active, q=expected_queued) -> bool:
                return (
                    await gauge(http, "inference_active_slots") == a
                    and await gauge(http, "inference_queue_depth") == q
                )

            await until(reached)
        rejected = await http.post("/v1/chat/completions", json=body)
        for i in range(SLOTS + QUEUE):
            await http.post("/v1/cancel", json={"request_id": f"fill-{i:08d}"})
        finished = await asyncio.gather(*busy)
    assert rejected.status_code == 429
    assert int(rejected.headers["retry-after"]) >= 1
    assert rejected.json()["error"]["code"] == "queue_full"
    assert [r.json()["choices"][0]["finish_reason"] for r in finished] == ["cancelled"] * 4


def test_metrics_expose_queue_slots_latency_and_tokens(service, client) -> None:
    client.chat.completions.create(
        model="smollm2-135m-instruct", messages=FRANCE, temperature=0, stream=True
    ).close()
    text = httpx.get(service + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    for name in (
        "inference_queue_depth",
        "inference_active_slots",
        "inference_time_to_first_token_seconds_count",
        "inference_inter_token_latency_seconds",
        "inference_tokens_in_total",
        "inference_tokens_out_total",
    ):
        assert name in text, name
    assert httpx.get(service + "/metrics").status_code == 401


def test_tokenize_counts_what_the_model_is_given(client, service) -> None:
    """Working memory budgets the context window with these counts, so they must match the
    prompt the model really sees (chat template included) and the window it really has."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def tokenize(body: dict) -> httpx.Response:
        return httpx.post(service + "/tokenize", json=body, headers=headers, timeout=30)

    counted = tokenize({"messages": FRANCE}).json()
    served = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=FRANCE, temperature=0, max_tokens=1
    )
    assert counted == {"count": served.usage.prompt_tokens, "max_model_len": 512}
    longer = tokenize({"messages": [*FRANCE, {"role": "assistant", "content": "Paris."}]})
    assert longer.json()["count"] > counted["count"]
    text = tokenize({"prompt": "Hello world", "return_tokens": True}).json()
    assert text["count"] == len(text["tokens"]) > 0
    many = tokenize({"prompts": ["Hello world", "Hello world, again and again"]}).json()
    assert many["counts"][0] == text["count"] < many["counts"][1]
    both = tokenize({"prompt": "x", "messages": FRANCE})
    assert both.status_code == 400 and both.json()["error"]["type"] == "invalid_request_error"
    assert httpx.post(service + "/tokenize", json={"prompt": "x"}).status_code == 401


def test_logit_bias_bans_and_forces_tokens(client, service) -> None:
    """OpenAI's `logit_bias` (token id → bias in [-100, 100]) on both completion endpoints,
    greedy included."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def ids(text: str) -> list[int]:
        got = httpx.post(service + "/tokenize", headers=headers, timeout=30,
                         json={"prompt": text, "return_tokens": True})  # fmt: skip
        return list(got.json()["tokens"])

    prompt = "The capital of France is"
    plain = client.completions.create(model="smollm2-135m-instruct", prompt=prompt,
                                      temperature=0, max_tokens=3)  # fmt: skip
    assert "Paris" in plain.choices[0].text
    banned = {str(t): -100 for t in ids(" Paris") + ids("Paris")}
    without = client.completions.create(model="smollm2-135m-instruct", prompt=prompt,
                                        temperature=0, max_tokens=3, logit_bias=banned)  # fmt: skip
    assert "Paris" not in without.choices[0].text and without.choices[0].text
    rome = ids(" Rome")[0]
    forced = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=FRANCE, temperature=0, max_tokens=2,
        logit_bias={str(rome): 100},
    )  # fmt: skip
    assert ids(forced.choices[0].message.content or "") == [rome, rome]
    for bad in ({"49152": 1}, {"12": 101}, {"x": 1}):  # past the vocabulary, out of range, no id
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="smollm2-135m-instruct", prompt=prompt,
                                      max_tokens=1, logit_bias=bad)  # fmt: skip


VILLAGE = "Pellorindwyn"
FESTIVAL = (
    f"The Harvest Lantern Festival is held every October in the village of {VILLAGE}, on the "
    "banks of a slow river. Visitors carry paper lanterns through the square."
)


def test_copy_from_keeps_a_quoted_name_exact(client, service) -> None:
    """Copy-aware decoding (`copy_from`): a model pushed off the passage's spelling of an
    invented name (here by a logit bias against the name's later pieces, so greedy decoding
    misquotes it deterministically) writes it as the passage does once the passage is
    `copy_from`; sampled answers that start the name finish it exactly."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    got = httpx.post(service + "/tokenize", headers=headers, timeout=30,
                     json={"prompt": " " + VILLAGE, "return_tokens": True})  # fmt: skip
    pieces = list(got.json()["tokens"])
    assert len(pieces) >= 3  # a multi-token name
    against = {str(t): -8 for t in pieces[1:]}
    question = (
        f"Sources:\n\n[1] notes.md\n{FESTIVAL}\n\nAnswer the question using only the "
        "numbered sources above. Cite the sources you use like [1].\n\n"
        "Question: Which village holds the Harvest Lantern Festival?"
    )
    messages = [{"role": "user", "content": question}]

    def answer(**extra) -> str:
        done = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=messages, max_tokens=28, **extra
        )
        return done.choices[0].message.content or ""

    misquoted = answer(temperature=0, logit_bias=against)
    assert "village of" in misquoted and VILLAGE not in misquoted, misquoted  # e.g. "Parlin"
    exact = answer(temperature=0, logit_bias=against, extra_body={"copy_from": [FESTIVAL]})
    assert VILLAGE in exact, exact
    sampled = [answer(temperature=1.0, seed=seed, extra_body={"copy_from": [FESTIVAL]})
               for seed in range(4)]  # fmt: skip
    assert all(VILLAGE in a for a in sampled if VILLAGE[:4] in a), sampled
    # The text endpoint takes it too.
    done = client.completions.create(
        model="smollm2-135m-instruct", prompt=f"{FESTIVAL}\nThe festival's village,",
        temperature=0, max_tokens=12, extra_body={"copy_from": [FESTIVAL]},
    )  # fmt: skip
    assert done.choices[0].text
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="smollm2-135m-instruct", prompt="x", max_tokens=1,
                                  extra_body={"copy_from": ["x" * 200_001]})  # fmt: skip


def test_sigterm_drains_an_in_flight_stream(tmp_path_factory) -> None:
    url, process = start_inference(tmp_path_factory, "drain")
    with process as proc:
        wait_inference_ready(url)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = {"messages": ESSAY, "temperature": 0, "max_tokens": 40, "stream": True}
        lines = []
        with httpx.stream(
            "POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=120
        ) as response:
            for line in response.iter_lines():
                if line:
                    lines.append(line)
                if len(lines) == 2:
                    proc.send_signal(signal.SIGTERM)
        assert lines[-1] == "data: [DONE]"
        assert len(lines) > 3  # the stream went on after the signal
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz", timeout=2)
