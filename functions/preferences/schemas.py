"""Request and response models of the preferences function."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Signal = Literal["like", "dislike", "always", "never"]
# The model's own bound; PREFERENCES_MAX_CORRECTION_CHARS (at most this) is checked in the
# handler, so the limit is a setting.
CORRECTION_HARD_MAX = 32_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreferenceCreate(_Strict):
    conversation_id: str = Field(min_length=1, max_length=64)
    message_id: str = Field(min_length=1, max_length=64, description="an assistant message")
    explicit_signal: Signal
    score: float | None = Field(
        default=None, ge=-1, le=1,
        description="[-1, 1], its sign agreeing with the signal; default ±1",
    )  # fmt: skip
    corrected_text: str | None = Field(
        default=None, min_length=1, max_length=CORRECTION_HARD_MAX,
        description="the answer as it should have been (at most "
        "PREFERENCES_MAX_CORRECTION_CHARS characters)",
    )  # fmt: skip
    notes: str | None = Field(
        default=None, min_length=1, max_length=500,
        description="with `always` / `never`: becomes one of the persona's instructions",
    )  # fmt: skip


class PreferenceQuery(_Strict):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)
    conversation_id: str | None = Field(default=None, max_length=64)
    signal: Signal | None = None


class PreferenceOut(BaseModel):
    id: int
    conversation_id: str
    message_id: str
    explicit_signal: str
    score: float | None
    corrected_text: str | None
    notes: str | None
    context_text: str | None
    filtered_reason: str | None = Field(description="why the content check refused it")
    trainable: bool = Field(description="not filtered, and given after the last reset")
    job_id: str | None = Field(description="the training job that took it")
    job_status: str | None
    created_at: datetime
    updated_at: datetime


class PreferencePage(BaseModel):
    items: list[PreferenceOut]
    next_cursor: str | None


class InstructionOut(BaseModel):
    id: str
    kind: Literal["always", "never"]
    text: str
    source_event_id: int | None
    learned_version: int | None = Field(description="the persona version that learned it")
    applied_as: Literal["weights", "prompt", "over_budget"] | None = None
    created_at: datetime
    updated_at: datetime


class Decision(BaseModel):
    outcome: Literal["queued", "joined", "running", "below_threshold", "paused"]
    job_id: str | None
    new_events: int
    threshold: int
    not_before: datetime | None = Field(description="when a queued job's message is sent")


class FeedbackOut(BaseModel):
    preference: PreferenceOut
    replaced: bool = Field(description="an earlier feedback on this answer was replaced")
    adapter_id: str = Field(description="the user's persona adapter")
    instruction: InstructionOut | None
    training: Decision


class PersonaJobOut(BaseModel):
    id: str
    status: str
    attempt: int
    max_attempts: int
    priority: int
    num_events: int | None
    step_budget: int | None
    not_before: str | None
    reason: str | None
    progress: dict[str, Any] | None
    new_version: int | None
    loss: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrainingOut(BaseModel):
    threshold: int
    cooldown_s: int
    new_events: int
    cooldown_until: datetime | None
    active_job: PersonaJobOut | None
    last_job: PersonaJobOut | None


class PersonalizationOut(BaseModel):
    adapter_id: str | None
    adapter_version: int | None
    has_weights: bool
    learning_paused: bool
    reset_at: datetime | None
    instructions: list[InstructionOut]
    training: TrainingOut
    global_clustering: bool = Field(
        default=False, description="whether this user's feedback may shape global clusters"
    )


class PersonalizationUpdate(_Strict):
    learning_paused: bool | None = None
    global_clustering: bool | None = Field(
        default=None, description="allow (or withdraw) this user's feedback in global clusters"
    )


class ResetIn(_Strict):
    clear_instructions: bool = False


class InstructionUpdate(_Strict):
    kind: Literal["always", "never"] | None = None
    text: str | None = Field(
        default=None, min_length=1, max_length=500, pattern=r"\S",
        description="the new text (not blank)",
    )  # fmt: skip


class UserSettingsOut(BaseModel):
    locale: str | None
    timezone: str | None
    default_voice: str | None = Field(
        description="the voice answers are spoken in (unset: the service's default)"
    )


class UserSettingsUpdate(_Strict):
    """Only the fields sent change; null clears a setting."""

    locale: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$",
        description="a BCP 47 language tag, e.g. en-US",
    )  # fmt: skip
    timezone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="an IANA time zone, e.g. Europe/Paris",
    )
    default_voice: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="one of GET /v1/voice/voices",
    )  # fmt: skip

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
