"""Per-request LoRA adapters through the real service: published to the session's S3 bucket
and Postgres, resolved, checked, loaded, cached and applied by the running engine."""

from __future__ import annotations

import concurrent.futures
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.neural.peft import WEIGHTS_FILE, dump
from tests.integration.conftest import TOKEN, adapter_weights

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


# Blocking calls from async tests are fine here: nothing else runs on the test's loop meanwhile.
def _post(service: str, path: str, payload: dict) -> httpx.Response:
    return httpx.post(service + path, json=payload, headers=HEADERS, timeout=120)


def _get(service: str, path: str) -> httpx.Response:
    return httpx.get(service + path, headers=HEADERS, timeout=30)


def _chat(service: str, **body) -> httpx.Response:
    payload = {"messages": FRANCE, "temperature": 0, "max_tokens": 8, **body}
    return _post(service, "/v1/chat/completions", payload)


def _text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def _metric(service: str, name: str, **labels: str) -> float:
    text = _get(service, "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_an_adapter_changes_the_answer_and_the_final_chunk_says_so(service, adapters) -> None:
    owner = await adapters.user()
    record = await adapters.publish(owner, seed=1)
    base = _text(_chat(service))
    as_model = _chat(service, model=record.adapter_id)
    assert _text(as_model) != base
    assert as_model.json()["model"] == record.adapter_id
    applied = [{"id": record.adapter_id, "version": 1, "weight": 1.0}]
    assert as_model.json()["adapters"] == applied
    # The extension field with the same gate gives the same answer; a zero gate, the base one.
    same = _chat(service, adapters=[{"id": record.adapter_id, "weight": 1.0}])
    assert _text(same) == _text(as_model)
    assert _text(_chat(service, adapters=[{"id": record.adapter_id, "weight": 0.0}])) == base
    with httpx.stream(
        "POST",
        service + "/v1/chat/completions",
        json={"model": record.adapter_id, "messages": FRANCE, "max_tokens": 4, "stream": True},
        headers=HEADERS,
        timeout=120,
    ) as stream:
        chunks = [line for line in stream.iter_lines() if line.startswith("data: {")]
    assert '"adapters"' not in chunks[0] and '"adapters": [{"id"' in chunks[-1]
    assert _chat(service).json()["adapters"] == []


async def test_a_version_bump_is_served_on_the_next_request(service, adapters) -> None:
    owner = await adapters.user()
    first = await adapters.publish(owner, seed=2)
    old = _chat(service, model=first.adapter_id)
    assert old.json()["adapters"][0]["version"] == 1
    await adapters.publish(owner, seed=3, adapter_id=first.adapter_id)
    new = _chat(service, model=first.adapter_id)
    assert new.json()["adapters"][0]["version"] == 2 and _text(new) != _text(old)
    pinned = _chat(service, adapters=[{"id": first.adapter_id, "version": 1}])
    assert _text(pinned) == _text(old)


async def test_a_checksum_mismatch_is_refused(service, adapters) -> None:
    record = await adapters.publish(await adapters.user(), seed=4)
    # A valid file, but not the published one.
    tampered = dump(adapter_weights(seed=5))[WEIGHTS_FILE]
    adapters.s3.put_object(Bucket=adapters.bucket, Key=record.prefix + WEIGHTS_FILE, Body=tampered)
    before = _metric(service, "inference_adapter_load_failures_total", reason="checksum")
    response = _chat(service, model=record.adapter_id)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "adapter_unusable"
    assert "checksum" in response.json()["error"]["message"]
    after = _metric(service, "inference_adapter_load_failures_total", reason="checksum")
    assert after == before + 1


async def test_unknown_foreign_and_malformed_adapter_requests(service, adapters) -> None:
    owner, stranger = await adapters.user(), await adapters.user()
    record = await adapters.publish(owner, seed=6)
    assert _chat(service, model=str(uuid.uuid4())).status_code == 404
    assert _chat(service, model=record.adapter_id, user=owner).status_code == 200
    refused = _chat(service, model=record.adapter_id, user=stranger)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
    four = [{"id": str(uuid.uuid4())} for _ in range(4)]
    assert _chat(service, adapters=four).status_code == 400
    twice = [{"id": record.adapter_id}]
    assert _chat(service, model=record.adapter_id, adapters=twice).status_code == 400
    assert _chat(service, adapters=[{"id": "../../etc/passwd"}]).status_code == 400
    assert _chat(service, adapters=[{"id": record.adapter_id, "weight": 9}]).status_code == 400


async def test_concurrent_first_requests_load_an_adapter_once(service, adapters) -> None:
    record = await adapters.publish(await adapters.user(), seed=7)
    misses = _metric(service, "inference_adapter_misses_total", tier="host")
    loads = _metric(service, "inference_adapter_load_seconds_count")
    # Two at once: the shared service admits a queue of two.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: _chat(service, model=record.adapter_id), range(2)))
    assert len({_text(answer) for answer in answers}) == 1
    assert _metric(service, "inference_adapter_misses_total", tier="host") == misses + 1
    assert _metric(service, "inference_adapter_load_seconds_count") == loads + 1


async def test_eviction_under_a_small_budget_keeps_the_pinned_persona(service, adapters) -> None:
    owner = await adapters.user()
    persona = await adapters.publish(owner, seed=8, kind="persona")
    assert _chat(service, model=persona.adapter_id, max_tokens=1).status_code == 200
    skills = [await adapters.publish(owner, seed=10 + i) for i in range(5)]  # 5 x 1.8 MB > 8 MB
    evictions = _metric(service, "inference_adapter_evictions_total", tier="host")
    for skill in skills:
        assert _chat(service, model=skill.adapter_id, max_tokens=1).status_code == 200
    listed = {m["id"]: m for m in _get(service, "/v1/models").json()["data"]}
    assert listed[persona.adapter_id]["in_host_cache"] and listed[persona.adapter_id]["pinned"]
    assert not listed.get(skills[0].adapter_id, {}).get("in_host_cache")
    assert listed[skills[-1].adapter_id]["in_host_cache"]
    assert _metric(service, "inference_adapter_evictions_total", tier="host") > evictions
    assert _metric(service, "inference_adapter_evictions_total", tier="device") > 0


async def test_preloading_warms_the_cache(service, adapters) -> None:
    record = await adapters.publish(await adapters.user(), seed=20)
    response = _post(service, "/v1/adapters/load", {"id": record.adapter_id, "pin_s": 60})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1 and response.json()["checksum"] == record.checksum
    hits = _metric(service, "inference_adapter_hits_total", tier="host")
    assert _chat(service, model=record.adapter_id, max_tokens=1).status_code == 200
    assert _metric(service, "inference_adapter_hits_total", tier="host") == hits + 1
