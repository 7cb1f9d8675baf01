"""Request and answer shapes of the chat function (DESIGN.md §5)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_MESSAGE_CHARS = 32_000


def _uuid(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{what} must be a UUID") from None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # With mode "voice": the transcript as the user sent it (maybe edited after
    # POST /v1/voice/transcribe), and `clip_id` the recording it came from.
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    mode: Literal["text", "voice"] = "text"
    clip_id: str | None = None

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is blank")
        return value

    @field_validator("clip_id")
    @classmethod
    def _clip_id(cls, value: str | None) -> str | None:
        return _uuid(value, "clip_id")

    @model_validator(mode="after")
    def _clip_with_voice(self) -> MessageIn:
        if self.mode == "voice" and self.clip_id is None:
            raise ValueError("a voice message needs clip_id (from POST /v1/voice/transcribe)")
        if self.mode == "text" and self.clip_id is not None:
            raise ValueError("clip_id goes with mode 'voice'")
        return self


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str | None = None
    message: MessageIn
    # The message this one follows (default: the conversation's newest). With `regenerate`,
    # the user message to answer again: the new answer is a sibling of the earlier ones.
    parent_id: str | None = None
    regenerate: bool = False
    # A new version of this earlier user message (edit and resubmit): the new message takes
    # the edited one's parent, so it is a sibling of it and the thread branches there.
    edit_of: str | None = None
    context_ids: list[str] = Field(default_factory=list, max_length=8)
    context_id: str | None = None  # shorthand for one context
    workflow_id: str | None = None
    artifact_ids: list[str] = Field(default_factory=list, max_length=8)
    stream: bool = False
    client_request_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("conversation_id", "parent_id", "edit_of", "context_id", "workflow_id")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return _uuid(value, "ids")

    @field_validator("context_ids", "artifact_ids")
    @classmethod
    def _id_lists(cls, values: list[str]) -> list[str]:
        return [str(_uuid(v, "ids")) for v in values]

    @model_validator(mode="after")
    def _consistent(self) -> ChatIn:
        if self.parent_id and not self.conversation_id:
            raise ValueError("parent_id needs conversation_id")
        if self.regenerate and not self.parent_id:
            raise ValueError("regenerate needs parent_id (the user message to answer again)")
        if self.edit_of and not self.conversation_id:
            raise ValueError("edit_of needs conversation_id")
        if self.regenerate and self.message.mode == "voice":
            raise ValueError("regenerate answers a stored message: send it in mode 'text'")
        if self.edit_of and (self.parent_id or self.regenerate):
            raise ValueError(
                "edit_of takes the edited message's parent: no parent_id or regenerate"
            )
        return self

    def all_context_ids(self) -> list[str]:
        ids = [*self.context_ids, *([self.context_id] if self.context_id else [])]
        return list(dict.fromkeys(ids))


class CancelIn(BaseModel):
    request_id: str = Field(min_length=1, max_length=128)


class ChatOut(BaseModel):
    request_id: str | None
    conversation_id: str
    message_id: str | None
    user_message_id: str
    content: str
    content_struct: dict[str, Any] | None
    usage: dict[str, int]
    adapters: list[dict[str, Any]]
    # Routed adapters the model service refused; the answer came without them.
    adapters_skipped: list[dict[str, Any]] = Field(default_factory=list)
    trace: dict[str, Any]
    cancelled: bool
