"""Config function (SPEC §10.1, §18): ConfigOps patches. Anyone signed in proposes (users for
their own private artifacts; the rules are the domain's, shared.domain.configops) and reads
their own patches; admins see every patch, decide, and apply, which queues the apply-patch
step (202: the patch is `applying` until the queue function has written the version)."""

from __future__ import annotations

from typing import Any

from functions.config.schemas import (
    ApplyIn,
    DecideIn,
    PatchOut,
    PatchPage,
    PatchQuery,
    PreviewOut,
    ProposeIn,
)
from shared.domain.configops import lifecycle, store
from shared.domain.configops.models import NewArtifact, Patch, Proposer
from shared.domain.configops.preview import preview
from shared.domain.configops.propose import Proposal, propose
from shared.platform import outbox
from shared.platform.auth.perimeter import client_of, perimeter
from shared.platform.errors import NotFound
from shared.platform.idempotency import IdempotencyStore
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


def _out(patch: Patch) -> PatchOut:
    return PatchOut.model_validate(patch, from_attributes=True)


def _patch_id(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 2**63 - 1:
        raise NotFound(f"no such patch: {raw[:32]!r}")
    return int(raw)


async def propose_patch(call: Call[ProposeIn], *, services: Services) -> PatchOut:
    body, user = call.body, call.user
    create = NewArtifact(**body.create.model_dump()) if body.create else None
    proposal = Proposal(
        patch=body.patch, artifact_id=body.artifact_id, base_version=body.base_version,
        create=create, restore_version=body.restore_version, justification=body.justification,
    )  # fmt: skip

    async def made() -> dict[str, Any]:
        async with services.db.connection() as conn:
            patch = await propose(
                conn, proposal, proposer=Proposer.of(user.user_id, is_admin=user.is_admin),
                actor=client_of(call.request, user.user_id), redis=services.redis,
                settings=services.settings,
            )  # fmt: skip
        if patch.status == "applying":  # approved by CONFIGOPS_AUTO_APPROVE_OWN
            await outbox.flush(services.db, services.sqs, services.queues)
        return _out(patch).model_dump(mode="json")

    answer = await IdempotencyStore(services.redis).once(
        user.user_id, "config.propose", call.request.headers.get("idempotency-key"),
        body.model_dump(mode="json"), made,
    )  # fmt: skip
    return PatchOut.model_validate(answer)


async def list_patches(call: Call[PatchQuery], *, services: Services) -> PatchPage:
    query, user = call.body, call.user
    async with services.db.connection() as conn:
        items, cursor = await store.list_for(
            conn, store.Viewer(user.user_id, user.is_admin), status=query.status,
            artifact_id=query.artifact_id, cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    return PatchPage(items=[_out(p) for p in items], next_cursor=cursor)


async def get_patch(call: Call[Any], *, services: Services) -> PatchOut:
    user = call.user
    async with services.db.connection() as conn:
        viewer = store.Viewer(user.user_id, user.is_admin)
        return _out(await store.get(conn, _patch_id(call.path_params["id"]), viewer))


async def get_preview(call: Call[Any], *, services: Services) -> PreviewOut:
    user = call.user
    async with services.db.connection() as conn:
        viewer = store.Viewer(user.user_id, user.is_admin)
        shown = await preview(conn, _patch_id(call.path_params["id"]), viewer)
    return PreviewOut.model_validate(shown, from_attributes=True)


async def decide(call: Call[DecideIn], *, services: Services) -> PatchOut:
    user = call.user
    async with services.db.connection() as conn:
        patch = await lifecycle.decide(
            conn, _patch_id(call.path_params["id"]), decision=call.body.decision,
            reason=call.body.reason, actor=client_of(call.request, user.user_id),
            is_admin=user.is_admin,
        )  # fmt: skip
    return _out(patch)


async def _apply(call: Call[Any], patch_id: int, services: Services) -> PatchOut:
    user = call.user
    async with services.db.connection() as conn:
        patch = await lifecycle.request_apply(
            conn, patch_id, actor=client_of(call.request, user.user_id), is_admin=user.is_admin
        )
    await outbox.flush(services.db, services.sqs, services.queues)
    return _out(patch)


async def apply_patch(call: Call[Any], *, services: Services) -> PatchOut:
    return await _apply(call, _patch_id(call.path_params["id"]), services)


async def apply_by_body(call: Call[ApplyIn], *, services: Services) -> PatchOut:
    return await _apply(call, call.body.patch_id, services)


_PROPOSE = "Propose a JSON Patch (or a rollback, or a new artifact): validated and dry-run"
ROUTES = RouteTable(
    "config",
    [
        Route("POST", "/v1/config/propose_patch", propose_patch, _PROPOSE, access=Access.USER,
              request_model=ProposeIn, response_model=PatchOut, status=201),
        Route("POST", "/v1/config/patches", propose_patch, f"{_PROPOSE} (SPEC §18's path)",
              access=Access.USER, request_model=ProposeIn, response_model=PatchOut, status=201),
        Route("GET", "/v1/config/patches", list_patches,
              "Patches, newest first (admins: all; users: theirs)", access=Access.USER,
              request_model=PatchQuery, response_model=PatchPage),
        Route("GET", "/v1/config/patches/{id}", get_patch,
              "One patch with its validation and dry-run", access=Access.USER,
              response_model=PatchOut),
        Route("GET", "/v1/config/patches/{id}/preview", get_preview,
              "What the patch does: its base version's schema and the patched one",
              access=Access.USER, response_model=PreviewOut),
        Route("POST", "/v1/config/patches/{id}/decide", decide,
              "Approve or reject a pending patch, with the reason", access=Access.ADMIN,
              request_model=DecideIn, response_model=PatchOut),
        Route("POST", "/v1/config/patches/{id}/apply", apply_patch,
              "Queue the apply step of an approved patch", access=Access.ADMIN,
              response_model=PatchOut, status=202),
        Route("POST", "/v1/config/apply", apply_by_body,
              "Queue the apply step of an approved patch (SPEC §18's path)",
              access=Access.ADMIN, request_model=ApplyIn, response_model=PatchOut, status=202),
    ],
    **perimeter(),
)  # fmt: skip
