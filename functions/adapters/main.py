"""Adapters function: what personalization made, visible. The adapters a user may use (with
the version served, its weights and the router's state), an adapter's versions with their
training metrics, and the user's training jobs (status, progress, metrics, reason). For
admins: every user's training jobs and adapters (with their owners and versions), move an
adapter's pointer (roll back, approve a candidate), discard a version, and the training
metrics in Prometheus's text format. Every admin action is audited in the transaction of the
change; admin reads are not (as the admin function's user and audit lists are not)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from functions.adapters import metrics
from functions.adapters.schemas import (
    AdapterDetail,
    AdapterOut,
    AdapterPage,
    AdapterQuery,
    AdminAdapterDetail,
    AdminAdapterOut,
    AdminAdapterPage,
    AdminAdapterQuery,
    AdminJobOut,
    AdminJobPage,
    AdminJobQuery,
    DiscardOut,
    JobErrorOut,
    JobOut,
    JobPage,
    JobQuery,
    PointerOut,
    ProgressOut,
    RollbackIn,
    RouterStateOut,
    VersionOut,
    VersionPage,
    VersionQuery,
)
from shared.domain.adapters import catalog, versions
from shared.domain.preferences import history, persona
from shared.platform import audit
from shared.platform.auth.perimeter import client_of, perimeter
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


A = TypeVar("A", bound=AdapterOut)
J = TypeVar("J", bound=JobOut)


def _adapter(item: catalog.Adapter, out: type[A]) -> A:
    router = RouterStateOut.model_validate(item, from_attributes=True)
    return out.model_validate({**item.__dict__, "router": router})


def _version(item: versions.Version, *, mine: bool) -> VersionOut:
    out = VersionOut.model_validate(item, from_attributes=True)
    return out if mine else out.model_copy(update={"job_id": None})  # the owner's business


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _job(item: history.JobView, out: type[J]) -> J:
    progress = None
    if item.progress is not None:
        step, total = _number(item.progress.get("step")), _number(item.progress.get("total"))
        progress = ProgressOut(step=None if step is None else int(step),
                               total=None if total is None else int(total),
                               loss=_number(item.progress.get("loss")))  # fmt: skip
    errors = [JobErrorOut(attempt=None if (n := _number(e.get("attempt"))) is None else int(n),
                          reason=str(e["reason"]) if e.get("reason") is not None else None)
              for e in item.errors]  # fmt: skip
    fields = {**item.__dict__, "progress": progress, "errors": errors}
    return out.model_validate(fields)


async def list_adapters(call: Call[AdapterQuery], *, services: Services) -> AdapterPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await catalog.list_for(
            conn, call.user.user_id, adapter_type=query.type, owner=query.owner,
            cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    return AdapterPage(items=[_adapter(a, AdapterOut) for a in items], next_cursor=cursor)


async def get_adapter(call: Call[VersionQuery], *, services: Services) -> AdapterDetail:
    query = call.body
    async with services.db.connection() as conn:
        item = await catalog.get(conn, call.user.user_id, call.uuid_param("id"))
        kept, cursor = await versions.page(conn, item.id, cursor=query.cursor, limit=query.limit)
    page = VersionPage(items=[_version(v, mine=item.mine) for v in kept], next_cursor=cursor)
    return AdapterDetail.model_validate(
        {**_adapter(item, AdapterOut).model_dump(), "versions": page}
    )


async def list_jobs(call: Call[JobQuery], *, services: Services) -> JobPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await history.list_jobs(
            conn, call.user.user_id, status=query.status, adapter_id=query.adapter_id,
            cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    return JobPage(items=[_job(j, JobOut) for j in items], next_cursor=cursor)


async def get_job(call: Call[Any], *, services: Services) -> JobOut:
    async with services.db.connection() as conn:
        job = await history.get_job(conn, call.user.user_id, call.uuid_param("id"))
    return _job(job, JobOut)


# --- admin --------------------------------------------------------------------------------


async def admin_list_jobs(call: Call[AdminJobQuery], *, services: Services) -> AdminJobPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await history.list_all_jobs(
            conn, status=query.status, user_id=query.user_id, adapter_id=query.adapter_id,
            cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    return AdminJobPage(items=[_job(j, AdminJobOut) for j in items], next_cursor=cursor)


async def admin_list_adapters(
    call: Call[AdminAdapterQuery], *, services: Services
) -> AdminAdapterPage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await catalog.list_all(
            conn, call.user.user_id, adapter_type=query.type, owner_user_id=query.user_id,
            cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
    return AdminAdapterPage(items=[_adapter(a, AdminAdapterOut) for a in items],
                            next_cursor=cursor)  # fmt: skip


async def admin_get_adapter(call: Call[VersionQuery], *, services: Services) -> AdminAdapterDetail:
    query = call.body
    async with services.db.connection() as conn:
        item = await catalog.get_any(conn, call.user.user_id, call.uuid_param("id"))
        kept, cursor = await versions.page(conn, item.id, cursor=query.cursor, limit=query.limit)
    page = VersionPage(items=[_version(v, mine=True) for v in kept], next_cursor=cursor)
    return AdminAdapterDetail.model_validate(
        {**_adapter(item, AdminAdapterOut).model_dump(), "versions": page}
    )


async def _point(
    call: Call[Any], services: Services, version: int, *, approve: bool, note: str | None = None
) -> PointerOut:
    """Moves the pointer, makes the persona's instructions the new version did not learn
    pending again, and audits it, in one transaction."""
    adapter_id = call.uuid_param("id")
    async with services.db.connection() as conn, conn.transaction():
        moved = await versions.point(conn, adapter_id, version, candidate_only=approve)
        if moved.moved:
            pending = await persona.pointer_moved(conn, moved.adapter_id, moved.version)
            details = {"adapter_id": moved.adapter_id, "from": moved.previous_version,
                       "to": moved.version, "instructions_pending": pending}  # fmt: skip
            if note:
                details["note"] = note
            await audit.record(
                conn, "adapter_version_approved" if approve else "adapter_rolled_back",
                actor=client_of(call.request, call.user.user_id),
                subject_user_id=moved.owner_user_id, details=details,
            )  # fmt: skip
    return PointerOut.model_validate(moved, from_attributes=True)


async def rollback(call: Call[RollbackIn], *, services: Services) -> PointerOut:
    return await _point(call, services, call.body.version, approve=False, note=call.body.note)


async def approve(call: Call[Any], *, services: Services) -> PointerOut:
    number = versions.parse_number(call.path_params.get("version", ""))
    return await _point(call, services, number, approve=True)


async def discard(call: Call[Any], *, services: Services) -> DiscardOut:
    """The version's row goes (and the audit record comes) in one transaction; its files go
    after the commit, so nothing resolves a version whose files are missing."""
    adapter_id = call.uuid_param("id")
    number = versions.parse_number(call.path_params.get("version", ""))
    async with services.db.connection() as conn, conn.transaction():
        gone = await versions.discard(conn, adapter_id, number)
        await audit.record(
            conn, "adapter_version_discarded", actor=client_of(call.request, call.user.user_id),
            subject_user_id=gone.owner_user_id,
            details={"adapter_id": gone.adapter_id, "version": gone.version,
                     "had_weights": gone.had_weights},
        )  # fmt: skip
    removed = False
    try:
        removed = await asyncio.to_thread(
            versions.remove_files, services.s3, services.bucket(), gone
        )
    except Exception:  # the row is gone: stray files cost storage, never a wrong answer
        log.exception("could not remove the files of a discarded version under %s", gone.prefix)
    return DiscardOut(adapter_id=gone.adapter_id, version=gone.version, discarded=True,
                      files_removed=removed)  # fmt: skip


async def training_metrics(call: Call[Any], *, services: Services) -> Response:
    async with services.db.connection() as conn:
        stats = await history.stats(conn)
    return Response(metrics.render(stats), media_type=CONTENT_TYPE_LATEST)


ROUTES = RouteTable(
    "adapters",
    [
        Route("GET", "/v1/adapters", list_adapters,
              "Adapters the user may use (own, shared, global): the version served, weights, "
              "router state", access=Access.USER, request_model=AdapterQuery,
              response_model=AdapterPage),
        Route("GET", "/v1/adapters/{id}", get_adapter,
              "One adapter with a page of its versions (metrics, which one is served)",
              access=Access.USER, request_model=VersionQuery, response_model=AdapterDetail),
        Route("GET", "/v1/training/jobs", list_jobs, "The user's training jobs, newest first",
              access=Access.USER, request_model=JobQuery, response_model=JobPage),
        Route("GET", "/v1/training/jobs/{id}", get_job,
              "One training job: status, progress, metrics, reason, attempts",
              access=Access.USER, response_model=JobOut),
        Route("GET", "/v1/admin/training/jobs", admin_list_jobs,
              "Every user's training jobs, newest first, with their owners",
              access=Access.ADMIN, request_model=AdminJobQuery, response_model=AdminJobPage),
        Route("GET", "/v1/admin/adapters", admin_list_adapters,
              "Every adapter with its owner and the version served", access=Access.ADMIN,
              request_model=AdminAdapterQuery, response_model=AdminAdapterPage),
        Route("GET", "/v1/admin/adapters/{id}", admin_get_adapter,
              "Any adapter with its owner and a page of its versions (metrics, jobs, which one "
              "is served)", access=Access.ADMIN, request_model=VersionQuery,
              response_model=AdminAdapterDetail),
        Route("POST", "/v1/admin/adapters/{id}/rollback", rollback,
              "Serve another existing version of an adapter (files are never overwritten)",
              access=Access.ADMIN, request_model=RollbackIn, response_model=PointerOut),
        Route("POST", "/v1/admin/adapters/{id}/versions/{version}/approve", approve,
              "Serve a candidate version (one its training did not promote)",
              access=Access.ADMIN, response_model=PointerOut),
        Route("DELETE", "/v1/admin/adapters/{id}/versions/{version}", discard,
              "Discard a version that is not served, with its files",
              access=Access.ADMIN, response_model=DiscardOut),
        Route("GET", "/v1/admin/metrics", training_metrics,
              "Training job metrics (Prometheus text format)", access=Access.ADMIN,
              answer="text"),
    ],
    **perimeter(),
)  # fmt: skip
