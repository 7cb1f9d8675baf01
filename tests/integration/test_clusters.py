"""The cluster function on the real stack, with MiniLM and SmolLM2 behind the session's
inference service (issue 20 item 3): a user's feedback on two clearly different topics
clusters into two clusters whose keywords name the topics, with stable ids across runs;
global clusters hold only the events of users who allow it; a chat turn's routing sees its
nearest clusters as `clusters`."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from infra.gateway.app import internal_app
from shared.domain.preferences import store
from shared.services import Services
from tests.integration.configkit import admin
from tests.integration.conftest import gateway_client
from tests.integration.prefkit import answered, fetch_all, prefs_settings, signed_user

pytestmark = pytest.mark.integration

COOKING = [
    "How long should I boil pasta for it to be al dente?",
    "What oven temperature is best to roast vegetables?",
    "How do I make a tomato sauce for pasta from scratch?",
    "How long does a whole chicken need to roast in the oven?",
    "Which flour is best for baking bread at home?",
    "How do I keep my bread dough from getting sticky when kneading?",
    "Can I bake cookies without butter in the oven?",
    "What spices go well in a vegetable curry recipe?",
    "How much salt should I add to the pasta water?",
    "How do I stop garlic from burning in the frying pan?",
]
ASTRONOMY = [
    "How far away is the Andromeda galaxy from Earth?",
    "Why do stars twinkle in the night sky?",
    "Which telescope should I buy to see the rings of Saturn?",
    "How do astronomers measure the distance to faraway stars?",
    "What is a black hole at the centre of a galaxy?",
    "When is the next total solar eclipse visible from Europe?",
    "Why does the planet Mars look red through a telescope?",
    "How are new stars born inside a nebula?",
    "What makes a planet different from a dwarf planet like Pluto?",
    "How many moons does the planet Jupiter have?",
]
COOKING_WORDS = {"pasta", "oven", "roast", "bread", "bake", "baking", "dough", "salt", "cookies"}
ASTRONOMY_WORDS = {"stars", "planet", "telescope", "galaxy", "astronomers", "moons", "saturn"}


@pytest.fixture(scope="module")
async def clus(settings, service, migrated):
    # No training jobs: the events are the clusterer's, not the trainer's.
    made = Services.from_settings(
        prefs_settings(settings, service, training_threshold_events=100_000)
    )
    yield made
    await made.aclose()


@pytest.fixture
async def api(clus):
    async with gateway_client(clus.settings, clus) as client:
        yield client


async def _feedback(clus: Services, user_id: str, questions: list[str]) -> list[int]:
    """Events on answers to `questions`, each with its question's MiniLM vector (embedded in
    one call, as POST /v1/preferences embeds each through the same backend)."""
    vectors = await clus.llm.embed(questions)
    ids = []
    async with clus.db.connection() as conn:
        for question, vector in zip(questions, vectors, strict=True):
            conversation_id, _, message_id = await answered(conn, user_id, question=question)
            rated = await store.rated_message(conn, user_id, conversation_id, message_id)
            written = await store.upsert(
                conn, user_id, rated, signal="like", score=1.0, corrected_text=None,
                notes=None, embedding=vector, filtered_reason=None,
            )  # fmt: skip
            ids.append(written.event.id)
        await conn.commit()
    return ids


async def _run(clus: Services, user_id: str | None) -> None:
    """One ClusterQueue message through the function's /events, as the dispatcher sends it."""
    name = clus.template.queue_name("ClusterQueue")
    body = {"scope": "user" if user_id else "global", "user_id": user_id}
    record = {"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(body),
              "attributes": {"ApproximateReceiveCount": "1"},
              "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{name}"}  # fmt: skip
    app = internal_app(clus.settings, services=clus)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        done = await client.post(
            "/functions/ClusterFunction/events", json={"Records": [record]}, timeout=300
        )
    assert done.status_code == 200, done.text
    assert done.json()["batchItemFailures"] == [], done.text


async def _global_members(clus: Services, event_ids: list[int]) -> list[int]:
    rows = await fetch_all(
        clus, "SELECT event_id FROM cluster_event WHERE scope = 'global' AND event_id = ANY(%s)",
        event_ids,
    )  # fmt: skip
    return [r[0] for r in rows]


async def test_two_topics_make_two_clusters_named_by_their_keywords(api, clus) -> None:
    user_id, headers = await signed_user(api)
    cooking = await _feedback(clus, user_id, COOKING)
    stars = await _feedback(clus, user_id, ASTRONOMY)
    await _run(clus, user_id)

    listed = await api.get("/v1/clusters", headers=headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["data"]["items"]
    assert len(items) == 2, items
    by_topic = {}
    for item in items:
        words = set(item["keywords"])
        topic = "cooking" if words & COOKING_WORDS else "astronomy"
        assert words & (COOKING_WORDS if topic == "cooking" else ASTRONOMY_WORDS), item
        assert not words & (ASTRONOMY_WORDS if topic == "cooking" else COOKING_WORDS), item
        assert item["scope"] == "user" and item["size"] == 10 and item["label"]
        assert item["labeled_by"] in ("keywords", "model")
        assert (item["positive_count"], item["negative_count"]) == (10, 0)
        by_topic[topic] = item
    assert set(by_topic) == {"cooking", "astronomy"}
    # Every event is in its topic's cluster (purity 1), in the mapping and on the event.
    rows = await fetch_all(
        clus, "SELECT ce.event_id, ce.cluster_id::text, e.cluster_id::text FROM cluster_event ce"
        " JOIN preference_event e ON e.id = ce.event_id WHERE e.user_id = %s AND ce.scope = 'user'",
        user_id,
    )  # fmt: skip
    where = {event: cluster for event, cluster, on_event in rows if cluster == on_event}
    assert {where[e] for e in cooking} == {by_topic["cooking"]["id"]}
    assert {where[e] for e in stars} == {by_topic["astronomy"]["id"]}

    # A second run (one more cooking question) keeps the ids: centroids matched by cosine.
    await _feedback(clus, user_id, ["How do I bake a pizza in a home oven?"])
    await _run(clus, user_id)
    again = (await api.get("/v1/clusters", headers=headers)).json()["data"]["items"]
    assert {i["id"]: i["size"] for i in again} == {
        by_topic["cooking"]["id"]: 11,
        by_topic["astronomy"]["id"]: 10,
    }
    # Nobody else sees them; an admin sees them with their owner.
    _, other = await signed_user(api)
    assert (await api.get("/v1/clusters", headers=other)).json()["data"]["items"] == []
    boss = await admin(api, clus.settings)
    page = await api.get("/v1/admin/clusters", headers=boss, params={"user_id": user_id})
    assert {i["user_id"] for i in page.json()["data"]["items"]} == {user_id}
    assert (await api.get("/v1/admin/clusters", headers=headers)).status_code == 403


async def test_global_clusters_hold_only_the_events_of_users_who_allow_it(api, clus) -> None:
    allowing, allowing_headers = await signed_user(api)
    refusing, refusing_headers = await signed_user(api)
    shown = await api.patch("/v1/me/personalization", headers=allowing_headers,
                            json={"global_clustering": True})  # fmt: skip
    assert shown.status_code == 200, shown.text
    assert shown.json()["data"]["global_clustering"] is True
    default = await api.get("/v1/me/personalization", headers=refusing_headers)
    assert default.json()["data"]["global_clustering"] is False  # off unless asked
    mine = await _feedback(clus, allowing, COOKING[:5] + ASTRONOMY[:5])
    theirs = await _feedback(clus, refusing, COOKING[5:] + ASTRONOMY[5:])
    await _run(clus, None)
    assert sorted(await _global_members(clus, mine)) == sorted(mine)
    assert await _global_members(clus, theirs) == []

    # Consent given: the next global run takes the events in; withdrawn: out at once.
    await api.patch("/v1/me/personalization", headers=refusing_headers,
                    json={"global_clustering": True})  # fmt: skip
    await _run(clus, None)
    assert sorted(await _global_members(clus, theirs)) == sorted(theirs)
    await api.patch("/v1/me/personalization", headers=refusing_headers,
                    json={"global_clustering": False})  # fmt: skip
    assert await _global_members(clus, theirs) == []
    await _run(clus, None)
    assert await _global_members(clus, theirs) == []


async def test_a_turn_routes_with_its_nearest_clusters(api, clus) -> None:
    user_id, headers = await signed_user(api)
    await _feedback(clus, user_id, COOKING + ASTRONOMY)
    await _run(clus, user_id)
    policy = {
        "kind": "policy.routing", "name": "by-cluster",
        "rules": [
            {"id": "near_cooking", "when": "cluster_label_contains(clusters, 'pasta')",
             "action": {"type": "activate_adapter_by_type", "adapter_type": "persona",
                        "weight": 0.5}},
            {"id": "any_cluster", "when": "len(clusters) > 0",
             "action": {"type": "deactivate_all_adapters"}},
        ],
    }  # fmt: skip
    made = await api.post("/v1/artifacts", headers=headers,
                          json={"name": "by-cluster", "schema": policy})  # fmt: skip
    assert made.status_code == 201, made.text
    answer = await api.post("/v1/chat", headers=headers, json={
        "message": {"content": "How long do I boil spaghetti pasta?"}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    router = answer.json()["data"]["trace"]["router"]
    assert router["policy"] == "by-cluster"
    nearest = router["clusters"]
    # The user's cooking cluster, and global ones too (the other tests' consenting users').
    assert "pasta" in nearest[0]["keywords"] and nearest[0]["similarity"] > 0.3
    assert any(c["scope"] == "user" and "pasta" in c["keywords"] for c in nearest), nearest
    assert nearest == sorted(nearest, key=lambda c: -c["similarity"]) and len(nearest) <= 3
    fired = {r["id"]: r["fired"] for r in router["rules"]}
    assert fired == {"near_cooking": True, "any_cluster": True}, router["rules"]


async def _outbox(clus: Services, user_id: str) -> list[dict]:
    rows = await fetch_all(
        clus, "SELECT body FROM outbox_message WHERE queue = 'ClusterQueue'"
        " AND body->>'user_id' = %s ORDER BY id", user_id,
    )  # fmt: skip
    return [r[0] for r in rows]


async def test_runs_are_queued_hourly_once_and_by_an_admin(api, clus) -> None:
    user_id, _ = await signed_user(api)
    await _feedback(clus, user_id, COOKING[:4])
    app = internal_app(clus.settings, services=clus)
    transport = httpx.ASGITransport(app=app)
    tick = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        first = await client.post("/functions/ClusterFunction/events", json=tick)
        again = await client.post("/functions/ClusterFunction/events", json=tick)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["queued"] >= 2  # this user's run and the global one
    assert again.json()["data"]["queued"] == 0  # the same hour: nothing twice
    assert await _outbox(clus, user_id) == [{"scope": "user", "user_id": user_id}]

    boss = await admin(api, clus.settings)
    body = {"scope": "user", "user_id": user_id}
    queued = await api.post("/v1/admin/clusters/run", headers=boss, json=body)
    assert queued.status_code == 202, queued.text
    assert queued.json()["data"] == {"queued": 1}
    assert len(await _outbox(clus, user_id)) == 2
    bad = await api.post("/v1/admin/clusters/run", headers=boss, json={"scope": "user"})
    assert bad.status_code == 400
