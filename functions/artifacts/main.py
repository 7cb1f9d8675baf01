"""Artifacts function: workflows, routing policies, tool specs, knowledge contexts and memory
summaries as versioned, validated JSON; adapters (written by training) are
listed, read, renamed and deleted here too."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from functions.artifacts.schemas import (
    ArtifactCreate,
    ArtifactOut,
    ArtifactPage,
    ArtifactQuery,
    ArtifactUpdate,
    ArtifactVersionOut,
    ArtifactVersionPage,
    ArtifactVersionQuery,
)
from shared.domain.adapters.objects import delete_version
from shared.domain.artifacts import store
from shared.platform.auth.perimeter import perimeter
from shared.platform.errors import NotFound
from shared.platform.idempotency import IdempotencyStore
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


def _out(item: store.Artifact) -> ArtifactOut:
    return ArtifactOut.model_validate(item, from_attributes=True)


async def create(call: Call[ArtifactCreate], *, services: Services) -> ArtifactOut:
    """With an `Idempotency-Key`, a repeat within 24 h answers the artifact made the first
    time; a failed create frees the key."""
    body = call.body
    user = call.user

    async def made() -> dict[str, Any]:
        async with services.db.connection() as conn:
            item = await store.create(
                conn, user.user_id, name=body.name, schema=body.body, type=body.type,
                description=body.description, visibility=body.visibility, is_admin=user.is_admin,
            )  # fmt: skip
        return _out(item).model_dump(mode="json")

    answer = await IdempotencyStore(services.redis).once(
        user.user_id, "artifacts.create", call.request.headers.get("idempotency-key"),
        body.model_dump(mode="json"), made,
    )  # fmt: skip
    return ArtifactOut.model_validate(answer)


async def list_artifacts(call: Call[ArtifactQuery], *, services: Services) -> ArtifactPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await store.list_for(
            conn, call.user.user_id, type=query.type, visibility=query.visibility,
            owner=query.owner, cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    return ArtifactPage(items=[_out(a) for a in items], next_cursor=cursor)


async def get_artifact(call: Call[Any], *, services: Services) -> ArtifactOut:
    async with services.db.connection() as conn:
        return _out(await store.get(conn, call.user.user_id, call.uuid_param("id")))


async def update(call: Call[ArtifactUpdate], *, services: Services) -> ArtifactOut:
    body = call.body
    async with services.db.connection() as conn:
        updated = await store.update(
            conn, call.user.user_id, call.uuid_param("id"), patch=body.patch,
            schema=body.body, name=body.name, description=body.description,
            visibility=body.visibility, change_note=body.change_note,
            base_version=body.base_version, is_admin=call.user.is_admin,
        )  # fmt: skip
    return _out(updated)


async def delete(call: Call[Any], *, services: Services) -> dict[str, bool]:
    async with services.db.connection() as conn:
        prefixes = await store.delete(conn, call.user.user_id, call.uuid_param("id"))
    if prefixes:  # an adapter's files go after its rows (a reader never resolves a gap)
        for prefix in prefixes:
            try:
                await asyncio.to_thread(delete_version, services.s3, services.bucket(), prefix)
            except Exception:
                log.exception("could not remove adapter files under %s", prefix)
    return {"deleted": True}


async def list_versions(
    call: Call[ArtifactVersionQuery], *, services: Services
) -> ArtifactVersionPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await store.versions(
            conn, call.user.user_id, call.uuid_param("id"), cursor=query.cursor,
            limit=query.limit,
        )  # fmt: skip
    return ArtifactVersionPage(
        items=[ArtifactVersionOut.model_validate(v, from_attributes=True) for v in items],
        next_cursor=cursor,
    )


async def get_version(call: Call[Any], *, services: Services) -> ArtifactVersionOut:
    raw = call.path_params.get("version", "")
    if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise NotFound(f"no such version: {raw[:16]!r}")
    async with services.db.connection() as conn:
        found = await store.version(conn, call.user.user_id, call.uuid_param("id"), int(raw))
    return ArtifactVersionOut.model_validate(found, from_attributes=True)


ROUTES = RouteTable(
    "artifacts",
    [
        Route("POST", "/v1/artifacts", create,
              "Create an artifact (validated against its kind's JSON Schema; version 1)",
              access=Access.USER, request_model=ArtifactCreate, response_model=ArtifactOut,
              status=201),
        Route("GET", "/v1/artifacts", list_artifacts,
              "Artifacts the user may read, most recently updated first", access=Access.USER,
              request_model=ArtifactQuery, response_model=ArtifactPage),
        Route("GET", "/v1/artifacts/{id}", get_artifact, "One artifact at its current version",
              access=Access.USER, response_model=ArtifactOut),
        Route("PATCH", "/v1/artifacts/{id}", update,
              "JSON Patch or replace the schema (a new version), rename, change visibility",
              access=Access.USER, request_model=ArtifactUpdate, response_model=ArtifactOut),
        Route("DELETE", "/v1/artifacts/{id}", delete, "Delete an artifact and its versions",
              access=Access.USER),
        Route("GET", "/v1/artifacts/{id}/versions", list_versions,
              "The artifact's versions, newest first", access=Access.USER,
              request_model=ArtifactVersionQuery, response_model=ArtifactVersionPage),
        Route("GET", "/v1/artifacts/{id}/versions/{version}", get_version,
              "One version of an artifact", access=Access.USER, response_model=ArtifactVersionOut),
    ],
    **perimeter(),
)  # fmt: skip
