"""Preferences function: feedback on answers (preference events), the persona's instructions,
the user's controls over learning (pause, reset), and, on its schedule, the sweep of training
jobs whose worker died or whose message was lost. Training itself is the train function's
(`shared.domain.preferences.jobs` is its contract)."""

from __future__ import annotations

import logging
from typing import Any

from functions.preferences.schemas import (
    Decision,
    FeedbackOut,
    InstructionOut,
    InstructionUpdate,
    PersonalizationOut,
    PersonalizationUpdate,
    PreferenceCreate,
    PreferenceOut,
    PreferencePage,
    PreferenceQuery,
    ResetIn,
    UserSettingsOut,
    UserSettingsUpdate,
)
from shared.domain.accounts import user_settings
from shared.domain.clusters import store as cluster_store
from shared.domain.preferences import feedback, jobs, store
from shared.domain.preferences.checks import check_event
from shared.domain.preferences.schedule import TrainingPolicy
from shared.platform import outbox
from shared.platform.auth.perimeter import perimeter
from shared.platform.errors import ValidationError
from shared.platform.idempotency import IdempotencyStore
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


def _policy(services: Services) -> TrainingPolicy:
    return TrainingPolicy.from_settings(services.settings)


async def create(call: Call[PreferenceCreate], *, services: Services) -> FeedbackOut:
    """Checks first (the answer is the caller's assistant message, the correction fits), then
    embeds the context and writes everything in one transaction: a refusal writes nothing."""
    body, user = call.body, call.user
    limit = services.settings.preferences_max_correction_chars
    if body.corrected_text is not None and len(body.corrected_text) > limit:
        raise ValidationError(
            f"corrected_text is over {limit} characters",
            details=[{"loc": ["corrected_text"], "msg": f"at most {limit} characters",
                      "type": "string_too_long"}],
        )  # fmt: skip
    store.check_score(body.explicit_signal, body.score)

    async def made() -> dict[str, Any]:
        async with services.db.connection() as conn:
            rated = await store.rated_message(
                conn, user.user_id, body.conversation_id, body.message_id
            )
        vector = await services.embedder()(rated.context_text or rated.content)
        refused = await check_event(services.content_check, {
            "message": rated.content, "correction": body.corrected_text, "notes": body.notes,
        })  # fmt: skip
        async with services.db.connection() as conn:
            done = await feedback.record(
                conn, user.user_id, rated,
                feedback.Feedback(body.explicit_signal, body.score, body.corrected_text,
                                  body.notes),
                embedding=vector, filtered_reason=refused, policy=_policy(services),
            )  # fmt: skip
        if done.decision.outcome == "queued":
            await outbox.flush(services.db, services.sqs, services.queues)
        return FeedbackOut(
            preference=PreferenceOut.model_validate(done.event, from_attributes=True),
            replaced=done.replaced, adapter_id=done.adapter_id,
            instruction=InstructionOut.model_validate(done.instruction, from_attributes=True)
            if done.instruction else None,
            training=Decision.model_validate(done.decision.as_dict()),
        ).model_dump(mode="json")  # fmt: skip

    answer = await IdempotencyStore(services.redis).once(
        user.user_id, "preferences.create", call.request.headers.get("idempotency-key"),
        body.model_dump(mode="json"), made,
    )  # fmt: skip
    return FeedbackOut.model_validate(answer)


async def list_preferences(call: Call[PreferenceQuery], *, services: Services) -> PreferencePage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await store.list_for(
            conn, call.user.user_id, cursor=query.cursor, limit=query.limit,
            conversation_id=query.conversation_id, signal=query.signal,
        )  # fmt: skip
    return PreferencePage(
        items=[PreferenceOut.model_validate(e, from_attributes=True) for e in items],
        next_cursor=cursor,
    )


async def delete_preference(call: Call[Any], *, services: Services) -> dict[str, bool]:
    event = store.event_id(call.path_params.get("id", ""))
    async with services.db.connection() as conn:
        await feedback.delete_event(conn, call.user.user_id, event)
    return {"deleted": True}


async def _view(services: Services, user_id: str) -> PersonalizationOut:
    async with services.db.connection() as conn:
        found = await feedback.view(conn, user_id, policy=_policy(services))
        shared = await cluster_store.consent(conn, user_id)
    view = PersonalizationOut.model_validate(found, from_attributes=True)
    return view.model_copy(update={"global_clustering": shared})


async def get_personalization(call: Call[Any], *, services: Services) -> PersonalizationOut:
    return await _view(services, call.user.user_id)


async def update_personalization(
    call: Call[PersonalizationUpdate], *, services: Services
) -> PersonalizationOut:
    if call.body.global_clustering is not None:
        async with services.db.connection() as conn, conn.transaction():
            await cluster_store.set_consent(conn, call.user.user_id, call.body.global_clustering)
    if call.body.learning_paused is not None:
        async with services.db.connection() as conn:
            decision = await feedback.set_paused(
                conn, call.user.user_id, call.body.learning_paused, policy=_policy(services)
            )
        if decision is not None and decision.outcome == "queued":
            await outbox.flush(services.db, services.sqs, services.queues)
    return await _view(services, call.user.user_id)


async def reset(call: Call[ResetIn], *, services: Services) -> PersonalizationOut:
    async with services.db.connection() as conn:
        await feedback.reset(
            conn, call.user.user_id, clear_instructions=call.body.clear_instructions
        )
    return await _view(services, call.user.user_id)


async def update_instruction(
    call: Call[InstructionUpdate], *, services: Services
) -> InstructionOut:
    async with services.db.connection() as conn:
        changed = await feedback.edit_instruction(
            conn, call.user.user_id, call.path_params.get("id", ""),
            kind=call.body.kind, text=call.body.text,
        )  # fmt: skip
    return InstructionOut.model_validate(changed, from_attributes=True)


async def delete_instruction(call: Call[Any], *, services: Services) -> dict[str, bool]:
    async with services.db.connection() as conn:
        await feedback.delete_instruction(conn, call.user.user_id, call.path_params.get("id", ""))
    return {"deleted": True}


async def get_settings(call: Call[Any], *, services: Services) -> UserSettingsOut:
    async with services.db.connection() as conn:
        found = await user_settings.get(conn, call.user.user_id)
    return UserSettingsOut.model_validate(found, from_attributes=True)


async def update_settings(call: Call[UserSettingsUpdate], *, services: Services) -> UserSettingsOut:
    body = call.body
    changes = body.model_dump(include=body.model_fields_set)
    if body.default_voice is not None:
        # The voice service says which voices exist (a voice is data, not code).
        known = (await services.voice.engine.voices()).ids()
        if body.default_voice not in known:
            raise ValidationError(
                f"no voice {body.default_voice!r}", details=[{
                    "loc": ["default_voice"], "msg": f"one of {sorted(known)}",
                    "type": "unknown_voice"}],
            )  # fmt: skip
    async with services.db.connection() as conn, conn.transaction():
        found = await user_settings.update(conn, call.user.user_id, changes)
    return UserSettingsOut.model_validate(found, from_attributes=True)


async def sweep(call: Call[Any], *, services: Services) -> dict[str, int]:
    """Scheduled: jobs whose worker died are retried (or failed); queued jobs whose message
    was lost are sent again."""
    async with services.db.connection() as conn, conn.transaction():
        done = await jobs.sweep(conn, _policy(services))
    if any(done.values()):
        log.warning("training sweep", extra=done)
        await outbox.flush(services.db, services.sqs, services.queues)
    return done


ROUTES = RouteTable(
    "preferences",
    [
        Route("POST", "/v1/preferences", create,
              "Feedback on an assistant's answer (replaces the caller's earlier one on it)",
              access=Access.USER, request_model=PreferenceCreate, response_model=FeedbackOut,
              status=201, rate_limit="feedback"),
        Route("GET", "/v1/preferences", list_preferences,
              "The caller's feedback, newest first", access=Access.USER,
              request_model=PreferenceQuery, response_model=PreferencePage),
        Route("DELETE", "/v1/preferences/{id}", delete_preference,
              "Delete a feedback: no later training job uses it", access=Access.USER),
        Route("GET", "/v1/me/personalization", get_personalization,
              "The persona, its instructions, learning and training state",
              access=Access.USER, response_model=PersonalizationOut),
        Route("PATCH", "/v1/me/personalization", update_personalization,
              "Pause or resume learning; allow global clustering", access=Access.USER,
              request_model=PersonalizationUpdate, response_model=PersonalizationOut,
              rate_limit="feedback"),
        Route("POST", "/v1/me/personalization/reset", reset,
              "Reset the persona to the base model", access=Access.USER,
              request_model=ResetIn, response_model=PersonalizationOut, rate_limit="feedback"),
        Route("PATCH", "/v1/me/personalization/instructions/{id}", update_instruction,
              "Edit one of the persona's instructions", access=Access.USER,
              request_model=InstructionUpdate, response_model=InstructionOut,
              rate_limit="feedback"),
        Route("DELETE", "/v1/me/personalization/instructions/{id}", delete_instruction,
              "Delete one of the persona's instructions", access=Access.USER),
        Route("GET", "/v1/me/settings", get_settings,
              "The user's settings: locale, time zone, default voice", access=Access.USER,
              response_model=UserSettingsOut),
        Route("PATCH", "/v1/me/settings", update_settings,
              "Change settings (the fields sent; null clears one)", access=Access.USER,
              request_model=UserSettingsUpdate, response_model=UserSettingsOut,
              rate_limit="feedback"),
        Route("POST", "/events", sweep,
              "Scheduled sweep of crashed and lost training jobs", access=Access.INTERNAL),
    ],
    **perimeter(),
)  # fmt: skip
