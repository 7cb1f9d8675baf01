"""Contexts function: knowledge contexts (create, list with
stats, get, update, delete), attaching and detaching files (attaching queues ingestion through
the outbox), a preview of their chunks, one chunk (a citation's passage), ingestion stats, and
search over them."""

from __future__ import annotations

import dataclasses
from typing import Any

from functions.contexts.schemas import (
    AttachIn,
    AttachOut,
    ChunkOut,
    ChunkPage,
    ChunkQuery,
    ContextCreate,
    ContextFileOut,
    ContextFilePage,
    ContextFileQuery,
    ContextOut,
    ContextPage,
    ContextQuery,
    ContextStats,
    ContextUpdate,
    SearchIn,
    SearchOut,
)
from functions.files.schemas import FileOut
from shared.domain.files import store as files
from shared.domain.rag import contexts
from shared.domain.rag.attach import attaching
from shared.domain.rag.retrieval import Retriever
from shared.platform.auth.perimeter import perimeter
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


def _out(item: contexts.Context) -> ContextOut:
    return ContextOut.model_validate(item, from_attributes=True)


async def create(call: Call[ContextCreate], *, services: Services) -> ContextOut:
    body, user = call.body, call.user
    settings = body.model_dump(include={"chunk_size", "chunk_overlap", "pii_scrub"},
                               exclude_none=True)  # fmt: skip
    async with attaching(services.db, sqs=services.sqs, queues=services.queues) as attach:
        item = await contexts.create(
            attach.conn, user.user_id, name=body.name, description=body.description,
            visibility=body.visibility, settings=contexts.check_settings(settings),
            embedding_version=services.settings.rag_embedding_version, is_admin=user.is_admin,
        )  # fmt: skip
        await attach(item, user.user_id, body.file_ids, {})
        item.stats = await contexts.stats(attach.conn, item.id)
    return _out(item)


async def list_contexts(call: Call[ContextQuery], *, services: Services) -> ContextPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await contexts.list_for(
            conn, call.user.user_id, owner=query.owner, cursor=query.cursor, limit=query.limit
        )
    return ContextPage(items=[_out(i) for i in items], next_cursor=cursor)


async def get_context(call: Call[Any], *, services: Services) -> ContextOut:
    async with services.db.connection() as conn:
        item = await contexts.get_readable(conn, call.user.user_id, call.path_params["id"])
        item.stats = await contexts.stats(conn, item.id)
    return _out(item)


async def update(call: Call[ContextUpdate], *, services: Services) -> ContextOut:
    body, user = call.body, call.user
    changes = body.model_dump(exclude_none=True)
    async with services.db.connection() as conn, conn.transaction():
        item = await contexts.get_writable(conn, user.user_id, call.path_params["id"],
                                           is_admin=user.is_admin)  # fmt: skip
        contexts.check_settings({**item.settings, **changes})
        item = await contexts.update(conn, item, changes)
        item.stats = await contexts.stats(conn, item.id)
    return _out(item)


async def delete(call: Call[Any], *, services: Services) -> dict[str, bool]:
    user = call.user
    async with services.db.connection() as conn, conn.transaction():
        item = await contexts.get_writable(conn, user.user_id, call.path_params["id"],
                                           is_admin=user.is_admin)  # fmt: skip
        await contexts.delete(conn, item)
    return {"deleted": True}


async def attach(call: Call[AttachIn], *, services: Services) -> AttachOut:
    body, user = call.body, call.user
    overrides = body.model_dump(include={"chunk_size", "chunk_overlap"}, exclude_none=True)
    if overrides:
        contexts.check_settings(overrides)
    async with attaching(services.db, sqs=services.sqs, queues=services.queues) as attach:
        item = await contexts.get_writable(attach.conn, user.user_id, call.path_params["id"],
                                           is_admin=user.is_admin)  # fmt: skip
        attached = await attach(item, user.user_id, body.file_ids, overrides)
    return AttachOut(attached=attached)


async def detach(call: Call[Any], *, services: Services) -> dict[str, bool]:
    user = call.user
    async with services.db.connection() as conn, conn.transaction():
        item = await contexts.get_writable(conn, user.user_id, call.path_params["id"],
                                           is_admin=user.is_admin)  # fmt: skip
        await contexts.detach(conn, item, files.file_uuid(call.path_params["file_id"]))
    return {"detached": True}


async def list_files(call: Call[ContextFileQuery], *, services: Services) -> ContextFilePage:
    """Every file to the context's owner (and admins); anyone else who may read it (a global
    context) sees only their own files in it: others' file names are theirs."""
    user, query = call.user, call.body
    async with services.db.connection() as conn:
        item = await contexts.get_readable(conn, user.user_id, call.path_params["id"])
        everyone = user.is_admin or item.owner_user_id == user.user_id
        found, cursor = await files.in_context(
            conn, item.id, owner=None if everyone else user.user_id,
            cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    items = [ContextFileOut(file=FileOut.model_validate(a.file, from_attributes=True),
                            status=a.status, error=a.error, chunks=a.chunks,
                            attached_at=a.attached_at, ingested_at=a.ingested_at)
             for a in found]  # fmt: skip
    return ContextFilePage(items=items, next_cursor=cursor)


async def list_chunks(call: Call[ChunkQuery], *, services: Services) -> ChunkPage:
    query = call.body
    async with services.db.connection() as conn:
        item = await contexts.get_readable(conn, call.user.user_id, call.path_params["id"])
        file_id = files.file_uuid(query.file_id) if query.file_id else None
        items, cursor = await contexts.chunks(conn, item, file_id=file_id, cursor=query.cursor,
                                              limit=query.limit)  # fmt: skip
    return ChunkPage(items=items, next_cursor=cursor)


async def get_chunk(call: Call[Any], *, services: Services) -> ChunkOut:
    async with services.db.connection() as conn:
        item = await contexts.chunk_for(conn, call.user.user_id, call.path_params["id"])
    return ChunkOut(**item)


async def stats(call: Call[Any], *, services: Services) -> ContextStats:
    async with services.db.connection() as conn:
        item = await contexts.get_readable(conn, call.user.user_id, call.path_params["id"])
        return ContextStats(**await contexts.stats(conn, item.id))


async def search(call: Call[SearchIn], *, services: Services) -> SearchOut:
    body = call.body
    async with services.db.connection() as conn:
        item = await contexts.get_readable(conn, call.user.user_id, call.path_params["id"])
    # A text search embeds nothing: it works while the model is away.
    retriever = services.retriever if body.mode != "text" else Retriever(services.db, None)
    hits = await retriever.search(call.user.user_id, [item.id], body.query, k=body.k,
                                  mode=body.mode)  # fmt: skip
    return SearchOut(hits=[dataclasses.asdict(h) for h in hits])


ROUTES = RouteTable(
    "contexts",
    [
        Route("POST", "/v1/contexts", create,
              "Create a knowledge context (optionally attaching files)", access=Access.USER,
              request_model=ContextCreate, response_model=ContextOut, status=201),
        Route("GET", "/v1/contexts", list_contexts, "Contexts the user may read, with stats",
              access=Access.USER, request_model=ContextQuery, response_model=ContextPage),
        Route("GET", "/v1/contexts/{id}", get_context, "One context with its stats",
              access=Access.USER, response_model=ContextOut),
        Route("PATCH", "/v1/contexts/{id}", update,
              "Rename, describe, or change chunking/PII settings (applies to new ingestions)",
              access=Access.USER, request_model=ContextUpdate, response_model=ContextOut),
        Route("DELETE", "/v1/contexts/{id}", delete, "Delete a context and its chunks",
              access=Access.USER),
        Route("POST", "/v1/contexts/{id}/files", attach,
              "Attach files (queues their ingestion)", access=Access.USER,
              request_model=AttachIn, response_model=AttachOut),
        Route("GET", "/v1/contexts/{id}/files", list_files,
              "The files in a context, newest attachment first, with their ingestion there",
              access=Access.USER, request_model=ContextFileQuery, response_model=ContextFilePage),
        Route("DELETE", "/v1/contexts/{id}/files/{file_id}", detach,
              "Detach a file (its chunks leave search)", access=Access.USER),
        Route("GET", "/v1/contexts/{id}/chunks", list_chunks, "A preview of the chunks",
              access=Access.USER, request_model=ChunkQuery, response_model=ChunkPage),
        Route("GET", "/v1/chunks/{id}", get_chunk,
              "One chunk of a context the user may read (what a citation points at)",
              access=Access.USER, response_model=ChunkOut),
        Route("GET", "/v1/contexts/{id}/stats", stats,
              "Files by ingestion status, chunks, ingestion lag", access=Access.USER,
              response_model=ContextStats),
        Route("POST", "/v1/contexts/{id}/search", search,
              "Hybrid (or dense/text) search of the context", access=Access.USER,
              request_model=SearchIn, response_model=SearchOut),
    ],
    **perimeter(),
)  # fmt: skip
