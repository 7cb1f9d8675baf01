"""Account data function (issue 23 item 4, DESIGN.md §5a): a user's data under the user's
control. Exports: `POST /v1/me/export` queues one; ExportQueue brings it here, where the
zip is written to the store and a mail says it is ready; the user downloads it through a
short-lived presigned URL. Deletion: `DELETE /v1/me` (or an admin's
`DELETE /v1/admin/users/{id}`) deactivates the account and ends its sessions at once;
PurgeQueue brings the purge here (shared.domain.account_data.purge). Hourly, expired zips are
removed and stalled purges queued again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from functions.account_data.schemas import (
    AccountDeleting,
    DeleteAccountIn,
    Events,
    ExportAnswer,
    ExportDownload,
    ExportList,
    ExportMessage,
    ExportOut,
    PurgeMessage,
)
from functions.auth.cookies import clear_cookies
from shared.domain.account_data import exports, jobs, purge, reauth
from shared.domain.account_data.errors import CannotDeleteSelf, ExportExpired, ExportNotReady
from shared.domain.account_data.pseudonyms import pseudonym
from shared.platform import outbox
from shared.platform.audit import Actor
from shared.platform.auth.perimeter import client_of, perimeter, sessions
from shared.platform.runtime.batch import SqsBatch, SqsRecord, last_receive, process_batch
from shared.platform.runtime.envelope import ok
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


def _out(export: exports.Export) -> ExportOut:
    return ExportOut.model_validate(exports.public(export))


# --- exports ----------------------------------------------------------------------------------
async def request_export(call: Call[Any], *, services: Services) -> ExportAnswer:
    return ExportAnswer(export=_out(await jobs.queue_export(services, call.user.user_id)))


async def list_exports(call: Call[Any], *, services: Services) -> ExportList:
    async with services.db.connection() as conn:
        return ExportList(items=[_out(e) for e in await exports.recent(conn, call.user.user_id)])


async def get_export(call: Call[Any], *, services: Services) -> ExportAnswer:
    async with services.db.connection() as conn:
        found = await exports.get(conn, call.user.user_id, call.uuid_param("id"))
    return ExportAnswer(export=_out(found))


async def download(call: Call[Any], *, services: Services) -> ExportDownload:
    async with services.db.connection() as conn:
        found = await exports.get(conn, call.user.user_id, call.uuid_param("id"))
    now = datetime.now(UTC)
    if found.status == "expired" or (found.expires_at is not None and found.expires_at <= now):
        raise ExportExpired("this export was removed; ask for a new one")
    if found.status != "ready" or found.object_key is None:
        raise ExportNotReady(f"the export is {found.status}, not ready")
    ttl = services.settings.export_url_ttl_s
    filename = f"account-export-{found.created_at:%Y%m%d}.zip"
    url = await asyncio.to_thread(
        services.public_s3.generate_presigned_url, "get_object",
        Params={"Bucket": services.bucket(), "Key": found.object_key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"'},
        ExpiresIn=ttl,
    )  # fmt: skip
    return ExportDownload(url=url, expires_at=now + timedelta(seconds=ttl))


# --- deletion ---------------------------------------------------------------------------------
async def _delete(services: Services, user_id: str, actor: Actor, *, by_admin: bool) -> None:
    """Deactivated, purge recorded, audited and queued in one transaction; then every session
    ends (their Redis keys too, so access tokens already issued stop at once)."""
    alias = pseudonym(services.settings, user_id)
    async with services.db.connection() as conn, conn.transaction():
        await purge.request_deletion(conn, user_id, pseudonym=alias, actor=actor,
                                     by_admin=by_admin)  # fmt: skip
    await sessions(services).revoke_all(user_id)
    await outbox.flush(services.db, services.sqs, services.queues)


async def delete_me(call: Call[DeleteAccountIn], *, services: Services) -> Response:
    request, user, body = call.request, call.user, call.body
    await reauth.confirm(services, user.user_id, user.session_id, password=body.password,
                         code=body.code)  # fmt: skip
    await _delete(services, user.user_id, client_of(request, user.user_id), by_admin=False)
    response = ok(AccountDeleting().model_dump(), status=202)
    return clear_cookies(response, services.settings)


async def admin_delete(call: Call[Any], *, services: Services) -> AccountDeleting:
    target = call.uuid_param("id")
    if target == call.user.user_id:
        raise CannotDeleteSelf("use DELETE /v1/me to delete your own account")
    await _delete(services, target, client_of(call.request, call.user.user_id), by_admin=True)
    return AccountDeleting()


# --- queues and the schedule ------------------------------------------------------------------
async def handle(record: SqsRecord, *, services: Services) -> None:
    """One ExportQueue or PurgeQueue message (told apart by the queue it came from)."""
    if record.queue_name == services.template.queue_name(jobs.EXPORT_QUEUE):
        message = ExportMessage.model_validate(record.payload())
        await jobs.run_export(services, message.export_id, final=last_receive(services, record))
        return
    purge_id = PurgeMessage.model_validate(record.payload()).purge_id
    try:
        await purge.run(services, purge_id)
    except Exception as exc:
        await purge.record_failure(services, purge_id, f"{type(exc).__name__}: {exc}")
        raise


async def events(call: Call[Events], *, services: Services) -> Any:
    if call.body.Records is not None:
        batch = SqsBatch(Records=call.body.Records)
        return await process_batch(batch, lambda r: handle(r, services=services), services)
    return {"expired_exports": await jobs.expire_exports(services),
            "resumed_purges": await jobs.resume_purges(services)}  # fmt: skip


ROUTES = RouteTable(
    "account_data",
    [
        Route("POST", "/v1/me/export", request_export,
              "Queue an export of all your data (one zip; a mail says when it is ready)",
              access=Access.USER, response_model=ExportAnswer, status=202,
              rate_limit="export"),
        Route("GET", "/v1/me/exports", list_exports, "Your exports, newest first (last 10)",
              access=Access.USER, response_model=ExportList),
        Route("GET", "/v1/me/exports/{id}", get_export, "One of your exports",
              access=Access.USER, response_model=ExportAnswer),
        Route("GET", "/v1/me/exports/{id}/download", download,
              "A short-lived URL of a ready export's zip (409 export_not_ready, 410"
              " export_expired)", access=Access.USER, response_model=ExportDownload),
        Route("DELETE", "/v1/me", delete_me,
              "Delete your account and all its data. JSON body {password?, code?}: the"
              " password of an account with one, the MFA code when MFA is on; without"
              " either, a login within the last 10 minutes", access=Access.USER, status=202,
              request_model=DeleteAccountIn, json_body=True, response_model=AccountDeleting,
              rate_limit="account_delete"),
        Route("DELETE", "/v1/admin/users/{id}", admin_delete,
              "Delete a user's account and all its data (audited)", access=Access.ADMIN,
              status=202, response_model=AccountDeleting),
        Route("POST", "/events", events,
              "ExportQueue and PurgeQueue batches, and the hourly schedule (expired exports"
              " removed, stalled purges queued again)", access=Access.INTERNAL,
              request_model=Events),
    ],
    **perimeter(),
)  # fmt: skip
