"""Feedback through the in-process gateway on the real stack, with MiniLM and SmolLM2 behind the
session's inference service: preference events and their refusals, the persona and its
instructions in chat turns, the user's controls (issue 18, items 1 and 2). Scheduling and the
job contract: test_preferences_jobs.py."""

from __future__ import annotations

import math

import pytest

from shared.domain.preferences import feedback
from shared.domain.preferences.schedule import TrainingPolicy
from shared.services import Services
from tests.integration.conftest import gateway_client
from tests.integration.prefkit import QUESTION, answered, counts, prefs_settings, signed_user

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def prefs(settings, service, migrated):
    made = Services.from_settings(prefs_settings(settings, service))
    yield made
    await made.aclose()


@pytest.fixture
async def api(prefs):
    async with gateway_client(prefs.settings, prefs) as client:
        yield client


async def _answer(prefs, user_id: str, **kw) -> tuple[str, str, str]:
    async with prefs.db.connection() as conn:
        return await answered(conn, user_id, **kw)


async def _counts(prefs, user_id: str) -> dict[str, int]:
    async with prefs.db.connection() as conn:
        return await counts(conn, user_id)


def _body(conversation_id: str, message_id: str, signal: str = "like", **extra) -> dict:
    return {"conversation_id": conversation_id, "message_id": message_id,
            "explicit_signal": signal, **extra}  # fmt: skip


async def test_feedback_stores_its_context_and_embedding_and_makes_the_persona(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    conversation_id, _, message_id = await _answer(prefs, user_id)
    sent = await api.post("/v1/preferences", headers=headers,
                          json=_body(conversation_id, message_id))  # fmt: skip
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    event, persona_id = data["preference"], data["adapter_id"]
    assert (event["explicit_signal"], event["score"]) == ("like", 1)
    assert event["context_text"] == QUESTION
    assert event["trainable"] and data["replaced"] is False and data["instruction"] is None
    assert data["training"]["outcome"] == "below_threshold"
    assert (data["training"]["new_events"], data["training"]["threshold"]) == (1, 3)
    async with prefs.db.connection() as conn:
        stored = await (
            await conn.execute(
                "SELECT context_embedding FROM preference_event WHERE id = %s", (event["id"],)
            )
        ).fetchone()
        persona = await (
            await conn.execute(
                "SELECT a.type, a.version, a.schema, v.schema, s.artifact_id IS NOT NULL"
                " FROM artifact a JOIN artifact_version v ON v.artifact_id = a.id"
                " LEFT JOIN adapter_router_state s ON s.artifact_id = a.id WHERE a.id = %s",
                (persona_id,),
            )
        ).fetchone()
    # The context's MiniLM vector from the inference service (the router's own for that text).
    (expected,) = await prefs.llm.embed([QUESTION])
    vector = [float(x) for x in stored[0].to_list()]
    assert len(vector) == 384
    assert math.isclose(sum(a * b for a, b in zip(vector, expected, strict=True)), 1, rel_tol=1e-4)
    kind, version, schema, first, has_state = persona
    assert (kind, version, schema["mode"], schema["adapter_type"]) == (
        "adapter.lora",
        1,
        "prompt",
        "persona",
    )
    assert schema["fs_dir"] is None and first == schema and has_state
    # A second feedback on the same answer replaces the first.
    again = await api.post("/v1/preferences", headers=headers, json=_body(
        conversation_id, message_id, "dislike", score=-0.5, corrected_text="Paris."))  # fmt: skip
    assert again.status_code == 201, again.text
    replaced = again.json()["data"]
    assert replaced["replaced"] and replaced["preference"]["id"] == event["id"]
    assert replaced["preference"]["corrected_text"] == "Paris."
    assert replaced["adapter_id"] == persona_id
    listed = (await api.get("/v1/preferences", headers=headers)).json()["data"]
    assert [(i["id"], i["explicit_signal"]) for i in listed["items"]] == [(event["id"], "dislike")]
    assert (await _counts(prefs, user_id))["events"] == 1


async def test_the_list_pages_and_filters(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    made = []
    for signal in ("like", "dislike", "like"):
        conversation_id, _, message_id = await _answer(prefs, user_id)
        sent = await api.post("/v1/preferences", headers=headers,
                              json=_body(conversation_id, message_id, signal))  # fmt: skip
        made.append(sent.json()["data"]["preference"]["id"])
    first = (await api.get("/v1/preferences?limit=2", headers=headers)).json()["data"]
    rest = (await api.get(f"/v1/preferences?limit=2&cursor={first['next_cursor']}",
                          headers=headers)).json()["data"]  # fmt: skip
    assert [i["id"] for i in first["items"] + rest["items"]] == made[::-1]
    assert rest["next_cursor"] is None
    likes = (await api.get("/v1/preferences?signal=like", headers=headers)).json()["data"]
    assert {i["id"] for i in likes["items"]} == {made[0], made[2]}
    bad = await api.get("/v1/preferences?cursor=bm9wZQ", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


BAD_INPUT = {
    "another user's message": ("other", {}, 404, "not_found"),
    "an unknown message": ("unknown", {}, 404, "not_found"),
    "a message of another conversation": ("elsewhere", {}, 404, "not_found"),
    "a user message": ("question", {}, 400, "validation_error"),
    "an oversize correction": ("mine", {"corrected_text": "x" * 8001}, 400, "validation_error"),
    "an unknown signal": ("mine", {"explicit_signal": "love"}, 400, "validation_error"),
    "a score against its signal": ("mine", {"score": -0.5}, 400, "validation_error"),
    "an unknown field": ("mine", {"weight": 2}, 400, "validation_error"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input_gets_the_envelope_error_and_writes_nothing(api, prefs, case) -> None:
    which, extra, status, code = BAD_INPUT[case]
    user_id, headers = await signed_user(api)
    other_id, _ = await signed_user(api)
    conversation_id, question_id, message_id = await _answer(prefs, user_id)
    other_conversation, _, other_message = await _answer(prefs, other_id)
    elsewhere, _, _ = await _answer(prefs, user_id)
    target = {
        "other": (other_conversation, other_message),
        "unknown": (conversation_id, "7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        "elsewhere": (elsewhere, message_id),
        "question": (conversation_id, question_id),
        "mine": (conversation_id, message_id),
    }[which]
    before = await _counts(prefs, user_id)
    sent = await api.post("/v1/preferences", headers=headers, json={**_body(*target), **extra})
    assert sent.status_code == status, sent.text
    assert sent.json()["status"] == "error" and sent.json()["error"]["code"] == code
    assert await _counts(prefs, user_id) == before == dict.fromkeys(before, 0)
    assert (await _counts(prefs, other_id))["events"] == 0


async def test_refused_content_is_stored_but_never_trained_on(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    conversation_id, _, message_id = await _answer(prefs, user_id)
    sent = await api.post("/v1/preferences", headers=headers, json=_body(
        conversation_id, message_id, "always", notes="sign as jane.doe@example.com",
    ))  # fmt: skip
    data = sent.json()["data"]
    assert sent.status_code == 201, sent.text
    assert data["preference"]["filtered_reason"] == "notes: personal data (email)"
    assert not data["preference"]["trainable"] and data["instruction"] is None
    assert data["training"]["new_events"] == 0  # not counted toward the threshold
    clean_conversation, _, clean_message = await _answer(prefs, user_id)
    clean = await api.post("/v1/preferences", headers=headers,
                           json=_body(clean_conversation, clean_message))  # fmt: skip
    assert clean.json()["data"]["training"]["new_events"] == 1


async def test_feedback_has_its_own_rate_budget(settings, service, migrated) -> None:
    services = Services.from_settings(prefs_settings(settings, service, rate_feedback_per_min=2))
    try:
        async with gateway_client(services.settings, services) as client:
            user_id, headers = await signed_user(client)
            answers = [await _answer(services, user_id) for _ in range(3)]
            codes = []
            for conversation_id, _, message_id in answers:
                sent = await client.post("/v1/preferences", headers=headers,
                                         json=_body(conversation_id, message_id))  # fmt: skip
                codes.append(sent.status_code)
            assert codes == [201, 201, 429]
            assert sent.headers["retry-after"] and sent.json()["error"]["details"] == {
                "limit": "feedback"
            }
            assert (await _counts(services, user_id))["events"] == 2
            # Reading is not feedback: still served.
            assert (await client.get("/v1/preferences", headers=headers)).status_code == 200
    finally:
        await services.aclose()


async def _turn(api, headers) -> dict:
    """A blocking chat turn in a new conversation, asking the same question each time."""
    response = await api.post("/v1/chat", headers=headers, json={"message": {"content": QUESTION}})
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_instructions_apply_at_once_and_the_trace_names_the_persona(api, prefs) -> None:
    _, headers = await signed_user(api)
    before = await _turn(api, headers)
    note = "answer in one short sentence"
    sent = await api.post("/v1/preferences", headers=headers, json=_body(
        before["conversation_id"], before["message_id"], "always", notes=note))  # fmt: skip
    assert sent.status_code == 201, sent.text
    persona_id, instruction = sent.json()["data"]["adapter_id"], sent.json()["data"]["instruction"]
    assert (instruction["kind"], instruction["text"]) == ("always", note)

    after = await _turn(api, headers)
    routed = [a for a in after["trace"]["router"]["adapters"] if a["id"] == persona_id]
    assert routed == [{"id": persona_id, "weight": 0.5, "mode": "prompt", "version": 1}]
    assert {"id": persona_id, "weight": 1.0, "how": "prompt", "version": None} in after["adapters"]
    # The instruction is in the prompt: the same question costs more prompt tokens now.
    assert after["usage"]["prompt_tokens"] > before["usage"]["prompt_tokens"]
    view = (await api.get("/v1/me/personalization", headers=headers)).json()["data"]
    assert view["adapter_id"] == persona_id and not view["has_weights"]
    assert [(i["id"], i["applied_as"]) for i in view["instructions"]] == [
        (instruction["id"], "prompt")]  # fmt: skip

    # Edited: the new text applies at once.
    longer = note + ", and never use lists or headings in it"
    edited = await api.patch(f"/v1/me/personalization/instructions/{instruction['id']}",
                             headers=headers, json={"text": longer})  # fmt: skip
    assert edited.status_code == 200 and edited.json()["data"]["text"] == longer
    edited_turn = await _turn(api, headers)
    assert edited_turn["usage"]["prompt_tokens"] > after["usage"]["prompt_tokens"]

    # Deleted: the persona still routes, with nothing to say.
    gone = await api.delete(f"/v1/me/personalization/instructions/{instruction['id']}",
                            headers=headers)  # fmt: skip
    assert gone.status_code == 200
    last = await _turn(api, headers)
    assert [a["id"] for a in last["trace"]["router"]["adapters"]] == [persona_id]
    assert all(a["id"] != persona_id for a in last["adapters"])
    assert last["usage"]["prompt_tokens"] == before["usage"]["prompt_tokens"]


async def test_another_users_events_and_instructions_are_not_found(api, prefs) -> None:
    a_id, a = await signed_user(api)
    _, b = await signed_user(api)
    conversation_id, _, message_id = await _answer(prefs, a_id)
    made = (await api.post("/v1/preferences", headers=a, json=_body(
        conversation_id, message_id, "never", notes="use emoji"))).json()["data"]  # fmt: skip
    event_id, instruction_id = made["preference"]["id"], made["instruction"]["id"]
    for method, path, body in (
        ("DELETE", f"/v1/preferences/{event_id}", None),
        ("PATCH", f"/v1/me/personalization/instructions/{instruction_id}", {"text": "x"}),
        ("DELETE", f"/v1/me/personalization/instructions/{instruction_id}", None),
        ("DELETE", "/v1/preferences/not-a-number", None),
        ("DELETE", "/v1/preferences/99999999999999999999", None),
    ):
        answer = await api.request(method, path, headers=b, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await api.get("/v1/preferences", headers=b)).json()["data"]["items"] == []
    assert (await api.get("/v1/me/personalization", headers=b)).json()["data"]["instructions"] == []
    # A's are intact; deleting the event deletes the instruction its notes made.
    assert (await api.delete(f"/v1/preferences/{event_id}", headers=a)).status_code == 200
    assert (await _counts(prefs, a_id))["instructions"] == 0


async def test_pause_and_reset_from_the_api(api, prefs) -> None:
    user_id, headers = await signed_user(api)
    paused = await api.patch("/v1/me/personalization", headers=headers,
                             json={"learning_paused": True})  # fmt: skip
    assert paused.status_code == 200 and paused.json()["data"]["learning_paused"] is True
    for _ in range(3):
        conversation_id, _, message_id = await _answer(prefs, user_id)
        sent = await api.post("/v1/preferences", headers=headers, json=_body(
            conversation_id, message_id, "always", notes="be brief"))  # fmt: skip
        assert sent.json()["data"]["training"]["outcome"] == "paused"
    assert (await _counts(prefs, user_id))["jobs"] == 0
    reset = await api.post("/v1/me/personalization/reset", headers=headers,
                           json={"clear_instructions": True})  # fmt: skip
    view = reset.json()["data"]
    assert reset.status_code == 200 and view["reset_at"] and view["instructions"] == []
    listed = (await api.get("/v1/preferences", headers=headers)).json()["data"]["items"]
    assert len(listed) == 3 and not any(i["trainable"] for i in listed)
    # Resuming finds no new trainable events after the reset: nothing is queued.
    resumed = await api.patch("/v1/me/personalization", headers=headers,
                              json={"learning_paused": False})  # fmt: skip
    assert resumed.json()["data"]["training"]["active_job"] is None
    async with prefs.db.connection() as conn:
        seen = await feedback.view(conn, user_id, policy=TrainingPolicy(threshold=3))
    assert seen.training.new_events == 0
