"""The kernel's two stateful parts through whole chat turns on the real stack and model:
a user's routing policy choosing among really published adapters (which the inference
service then applies), and working memory folding old turns into a model-written summary
when the conversation outgrows the context window (512 tokens in the test service)."""

from __future__ import annotations

import pytest

from shared.services import Services
from tests.integration.chatkit import chat_api, parse_sse, tokens_of, user

pytestmark = pytest.mark.integration
__all__ = ["chat_api"]

QUESTION = "How do I reverse a list in Python?"
ELSEWHERE = "Which flowers grow well in a shady garden in spring?"


async def _centroid(services: Services, artifact_id: str, vector: list[float]) -> None:
    pool = services.db
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO adapter_router_state (artifact_id, centroid_vec) VALUES (%s, %s::vector)",
            (artifact_id, str(vector)),
        )


def _policy(far_id: str) -> dict:
    rule = lambda rid, when, action: {"id": rid, "when": when, "action": action}  # noqa: E731
    return {
        "kind": "policy.routing", "name": "mine", "max_active_adapters": 3, "weight_floor": 0.05,
        "rules": [
            rule("persona", "true", {"type": "activate_adapter_by_type",
                                     "adapter_type": "persona", "weight": 0.5}),
            rule("near_skill", "cosine_similarity(ctx_embedding, adapter_centroid) > 0.8",
                 {"type": "activate_adapter_by_id", "adapter_id": "current",
                  "weight": "similarity"}),
            rule("far_skill", "true", {"type": "activate_adapter_by_id", "adapter_id": far_id,
                                       "weight": 0.3}),
            rule("python_mode", "contains(message, 'Python')",
                 {"type": "scale_adapter_weight", "adapter_type": "persona", "factor": 0.5}),
            rule("drop_far", "contains(message, 'Python')",
                 {"type": "deactivate_adapter", "adapter_id": far_id}),
        ],
    }  # fmt: skip


async def test_a_user_policy_routes_published_adapters_into_the_answer(
    chat_api, adapters, model_services
):
    user_id, headers = await user(chat_api)
    persona = await adapters.publish(user_id, seed=21, kind="persona")
    near = await adapters.publish(user_id, seed=22, kind="skill")
    far = await adapters.publish(user_id, seed=23, kind="skill")
    near_vec, far_vec = await model_services.llm.embed([QUESTION, ELSEWHERE])
    await _centroid(model_services, near.adapter_id, near_vec)
    await _centroid(model_services, far.adapter_id, far_vec)
    body = {"name": "mine", "schema": _policy(far.adapter_id)}
    made = await chat_api.post("/v1/artifacts", headers=headers, json=body)
    assert made.status_code == 201, made.text

    response = await chat_api.post("/v1/chat", headers=headers,
                                   json={"message": {"content": QUESTION}})  # fmt: skip
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    router = data["trace"]["router"]
    assert router["policy"] == "mine" and router["policy_id"] == made.json()["data"]["id"]
    fired = {r["id"]: r["fired"] for r in router["rules"]}
    assert fired == dict.fromkeys(["persona", "near_skill", "far_skill", "python_mode",
                                   "drop_far"], True)  # fmt: skip
    near_rule = next(r for r in router["rules"] if r["id"] == "near_skill")
    assert near_rule["matched"] == [near.adapter_id]  # the far centroid is not similar enough
    ops = {r["id"]: [c["op"] for c in r["changes"]] for r in router["rules"]}
    assert ops["python_mode"] == ["scale"] and ops["drop_far"] == ["deactivate"]
    # near ≈ 1.0 (its centroid is the question) and persona 0.25, normalised to sum to 1.
    routed = {a["id"]: a["weight"] for a in router["adapters"]}
    assert set(routed) == {near.adapter_id, persona.adapter_id}
    assert routed[near.adapter_id] == pytest.approx(0.8, abs=0.01)
    assert routed[persona.adapter_id] == pytest.approx(0.2, abs=0.01)
    # The inference service applied exactly these (as LoRA, at these gates) to the answer.
    applied = {a["id"]: a for a in data["adapters"]}
    assert set(applied) == set(routed)
    for adapter_id, weight in routed.items():
        assert applied[adapter_id]["weight"] == pytest.approx(weight, abs=1e-6)
        assert applied[adapter_id]["how"] == "lora"

    # The same user, a message that mentions no Python: the far skill stays on.
    other = await chat_api.post("/v1/chat", headers=headers,
                                json={"message": {"content": ELSEWHERE}})  # fmt: skip
    assert other.status_code == 200, other.text
    routed = {a["id"] for a in other.json()["data"]["trace"]["router"]["adapters"]}
    assert far.adapter_id in routed and persona.adapter_id in routed


# About 150 tokens each: three turns of these overflow a 512-token window.
LONG = (
    "I keep a notebook about my garden. This week I planted {n} rows of carrots, {n} rows of "
    "beans and a small bed of basil next to the fence. The soil was dry, so I watered every "
    "evening and added compost from the pile behind the shed. My neighbour lent me a fork "
    "and told me that the frost may come early this year, so I should cover the young plants "
    "at night with an old sheet. I also noted that the tomatoes need stakes soon, that the "
    "slugs ate two lettuces, and that the rain gauge showed {n} millimetres on Sunday. "
    "Please give me one short tip for next week."
)


async def test_a_long_conversation_folds_old_turns_into_a_summary(chat_api, model_services) -> None:
    _, headers = await user(chat_api)
    conversation, traces = None, []
    for n in range(2, 7):
        body = {"message": {"content": LONG.format(n=n)}, "conversation_id": conversation}
        response = await chat_api.post("/v1/chat", headers=headers, json=body)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        conversation = data["conversation_id"]
        traces.append(data["trace"]["memory"])
        window_left = 512 - 48  # the test service's window less chat_max_tokens
        # The answer's prompt fits; `usage` also counts the summariser's calls of the turn.
        assert data["trace"]["memory"]["prompt_tokens"] <= window_left
        assert data["usage"]["prompt_tokens"] >= data["trace"]["memory"]["prompt_tokens"]
    assert sum(t["folds"] for t in traces) >= 1, traces
    assert traces[-1]["summary"] is True

    pool = model_services.db
    async with pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT content, sender, (meta->>'covers_until_seq')::int FROM message "
            "WHERE conversation_id = %s AND role = 'summary' ORDER BY seq", (conversation,),
        )).fetchall()  # fmt: skip
    assert rows and all(sender == "system" and text.strip() for text, sender, _ in rows)
    assert [covers for *_, covers in rows] == sorted({covers for *_, covers in rows})

    # Redis lost: the next turn rebuilds memory from Postgres, summary included.
    await model_services.redis.delete(f"chat:memory:{conversation}")
    body = {"message": {"content": "Thanks!"}, "conversation_id": conversation}
    response = await chat_api.post("/v1/chat", headers=headers, json=body)
    assert response.status_code == 200, response.text
    memory = response.json()["data"]["trace"]["memory"]
    assert memory["summary"] is True and memory["folds"] == 0


def _workflow() -> dict:
    chat = "llm.generic_chat_v1"
    return {
        "kind": "workflow.chat", "entrypoint": "node_fanout", "nodes": [
            {"id": "node_fanout", "type": "parallel", "children": ["node_intent", "node_gist"],
             "next": "node_route"},
            {"id": "node_intent", "type": "tool_call", "tool": "llm.intent_classifier_v1",
             "inputs": {"message": "${input.message}"}, "outputs": ["intent"]},
            {"id": "node_gist", "type": "tool_call", "tool": "memory.summarize_v1",
             "inputs": {"messages": [{"role": "user", "content": "${input.message}"}],
                        "max_tokens": 16}, "outputs": ["summary"]},
            {"id": "node_route", "type": "switch", "branches": [
                {"when": "intent == 'factual_question'", "next": "node_hurried"},
                {"when": "true", "next": "node_fallback"}]},
            # One millisecond is never enough: the node times out and on_error takes over.
            {"id": "node_hurried", "type": "tool_call", "tool": chat, "timeout_ms": 1,
             "max_retries": 1, "backoff_ms": 0, "inputs": {"message": "${input.message}"},
             "outputs": ["answer"], "on_error": "node_fallback", "next": "node_end"},
            {"id": "node_fallback", "type": "tool_call", "tool": chat,
             "inputs": {"message": "${input.message}"}, "outputs": ["answer"],
             "next": "node_end"},
            {"id": "node_end", "type": "end"},
        ],
    }  # fmt: skip


async def test_a_user_workflow_fans_out_branches_and_falls_back(chat_api) -> None:
    _, headers = await user(chat_api)
    body = {"name": "careful", "schema": _workflow()}
    made = await chat_api.post("/v1/artifacts", headers=headers, json=body)
    assert made.status_code == 201, made.text
    body = {"message": {"content": "What is the capital of France?"}, "stream": True,
            "workflow_id": made.json()["data"]["id"]}  # fmt: skip
    response = await chat_api.post("/v1/chat", headers=headers, json=body)
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    streamed = [data["node"] for name, data in events if name == "trace" and "node" in data]
    done = events[-1][1]
    nodes = {entry["node"]: entry for entry in done["trace"]["workflow"]}
    assert [entry["node"] for entry in streamed] == list(nodes)  # traced as they ran
    assert {nodes["node_intent"]["parent"], nodes["node_gist"]["parent"]} == {"node_fanout"}
    assert nodes["node_fanout"]["outcome"] == "ok"
    assert nodes["node_route"]["branch"] == 0  # classified factual_question
    hurried = nodes["node_hurried"]
    assert hurried["outcome"] == "fallback" and hurried["next"] == "node_fallback"
    assert hurried["error"] == "timed out after 0.001 s" and hurried["attempts"] == 2
    assert nodes["node_fallback"]["outcome"] == "ok"
    assert done["trace"]["workflow_outcome"] == "fallback"
    assert "paris" in tokens_of(events).lower()
