"""Conversations function: the sidebar's list, one conversation, rename, archive, delete, and
its messages. Messages are written by the chat function."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.domain.chat import conversations
from shared.platform.auth.perimeter import perimeter
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


class ConversationCreate(BaseModel):
    title: str | None = Field(default=None, max_length=200)


class ConversationUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    status: Literal["open", "archived"] | None = None


class ConversationQuery(BaseModel):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)
    status: Literal["open", "archived"] | None = None


class MessageQuery(BaseModel):
    cursor: int = Field(default=0, ge=0, description="the `seq` to continue after")
    limit: int = Field(default=50, ge=1, le=200)


class ConversationOut(BaseModel):
    id: str
    title: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    active_context_id: str | None
    message_count: int


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    parent_id: str | None
    sender: str
    role: str
    content: str
    content_struct: dict[str, Any] | None
    seq: int
    created_at: datetime
    token_count_in: int | None
    token_count_out: int | None
    meta: dict[str, Any]


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


async def create(call: Call[ConversationCreate], *, services: Services) -> ConversationOut:
    async with services.db.connection() as conn:
        made = await conversations.create(conn, call.user.user_id, title=call.body.title)
    return ConversationOut.model_validate(made, from_attributes=True)


async def list_conversations(
    call: Call[ConversationQuery], *, services: Services
) -> ConversationPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await conversations.list_for(
            conn, call.user.user_id, cursor=query.cursor, limit=query.limit,
            status=query.status,
        )  # fmt: skip
    return ConversationPage(
        items=[ConversationOut.model_validate(c, from_attributes=True) for c in items],
        next_cursor=cursor,
    )


async def get_conversation(call: Call[Any], *, services: Services) -> ConversationOut:
    async with services.db.connection() as conn:
        found = await conversations.get(conn, call.user.user_id, call.uuid_param("id"))
    return ConversationOut.model_validate(found, from_attributes=True)


async def update(call: Call[ConversationUpdate], *, services: Services) -> ConversationOut:
    async with services.db.connection() as conn:
        updated = await conversations.update(
            conn, call.user.user_id, call.uuid_param("id"),
            title=call.body.title, status=call.body.status,
        )  # fmt: skip
    return ConversationOut.model_validate(updated, from_attributes=True)


async def delete(call: Call[Any], *, services: Services) -> dict[str, bool]:
    async with services.db.connection() as conn:
        await conversations.delete(conn, call.user.user_id, call.uuid_param("id"))
    return {"deleted": True}


async def list_messages(call: Call[MessageQuery], *, services: Services) -> MessagePage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await conversations.messages(
            conn, call.user.user_id, call.uuid_param("id"),
            after_seq=query.cursor, limit=query.limit,
        )  # fmt: skip
    return MessagePage(
        items=[MessageOut.model_validate(m, from_attributes=True) for m in items],
        next_cursor=str(cursor) if cursor is not None else None,
    )


ROUTES = RouteTable(
    "conversations",
    [
        Route("POST", "/v1/conversations", create, "Start a conversation", access=Access.USER,
              request_model=ConversationCreate, response_model=ConversationOut, status=201),
        Route("GET", "/v1/conversations", list_conversations,
              "The user's conversations, most recently updated first", access=Access.USER,
              request_model=ConversationQuery, response_model=ConversationPage),
        Route("GET", "/v1/conversations/{id}", get_conversation, "One conversation",
              access=Access.USER, response_model=ConversationOut),
        Route("PATCH", "/v1/conversations/{id}", update, "Rename, archive or reopen",
              access=Access.USER, request_model=ConversationUpdate,
              response_model=ConversationOut),
        Route("DELETE", "/v1/conversations/{id}", delete,
              "Delete a conversation and its messages", access=Access.USER),
        Route("GET", "/v1/conversations/{id}/messages", list_messages,
              "Messages in order (cursor: the last seq seen)", access=Access.USER,
              request_model=MessageQuery, response_model=MessagePage),
    ],
    **perimeter(),
)  # fmt: skip
