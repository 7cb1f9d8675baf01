"""Files function: streamed multipart uploads and presigned uploads into
the object store under `users/{user_id}/files/`, listing, metadata, signed downloads, delete
(its chunks leave search with it) and the plan's limits. An upload naming a `context_id`
attaches the file there and queues its ingestion through the outbox."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from functions.files import uploads
from functions.files.multipart import FormReader
from functions.files.schemas import (
    CompleteIn,
    DownloadOut,
    DownloadQuery,
    FileOut,
    FilePage,
    FileQuery,
    LimitsOut,
    PresignIn,
    PresignOut,
    UploadForm,
    UploadOut,
)
from shared.domain.files import service, store
from shared.platform.auth.perimeter import perimeter
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


def _out(row: store.FileRow, contexts: list[dict[str, Any]] | None = None) -> FileOut:
    # FileRow's other attributes (owner, object key) stay out: the model names what is public.
    return FileOut.model_validate(row, from_attributes=True).model_copy(
        update={"contexts": contexts}
    )


def _stored(done: uploads.Uploaded) -> UploadOut:
    return UploadOut(file=_out(done.file), fs_path=done.file.name, duplicate=done.duplicate,
                     context_id=done.context_id, ingestion_queued=done.queued)  # fmt: skip


def _form(request: Request) -> FormReader:
    """The upload's body as it streams in (never read whole), with its declared size."""
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isascii() and length.isdigit() else None
    return FormReader(request.headers.get("content-type", ""), request.stream(),
                      declared_bytes=declared)  # fmt: skip


async def upload(call: Call[Any], *, services: Services) -> UploadOut:
    return _stored(await uploads.upload(services, call.user, _form(call.request)))


async def presign(call: Call[PresignIn], *, services: Services) -> PresignOut:
    body = call.body
    row, post = await service.presign(
        services, services.public_s3, call.user.user_id, filename=body.filename,
        size_bytes=body.size_bytes,
    )  # fmt: skip
    return PresignOut(file=_out(row), url=post["url"], fields=post["fields"],
                      expires_in_s=services.settings.files_presign_ttl_s)  # fmt: skip


async def complete(call: Call[CompleteIn], *, services: Services) -> UploadOut:
    body = call.body
    overrides = body.model_dump(include={"chunk_size", "chunk_overlap"}, exclude_none=True)
    done = await uploads.complete(
        services, call.user, call.uuid_param("id"), context_id=body.context_id,
        overrides=overrides,
    )  # fmt: skip
    return _stored(done)


async def list_files(call: Call[FileQuery], *, services: Services) -> FilePage:
    query = call.body
    async with services.db.connection() as conn:
        items, cursor = await store.list_for(
            conn, call.user.user_id, cursor=query.cursor, limit=query.limit
        )
    return FilePage(items=[_out(r) for r in items], next_cursor=cursor)


async def get_file(call: Call[Any], *, services: Services) -> FileOut:
    pool = services.db
    async with pool.connection() as conn:
        row = await store.get(conn, call.user.user_id, call.uuid_param("id"))
        return _out(row, await store.contexts_of(conn, row.id))


async def download(call: Call[DownloadQuery], *, services: Services) -> DownloadOut:
    async with (services.db).connection() as conn:
        row = await store.get(conn, call.user.user_id, call.uuid_param("id"))
    url = service.download_url(services, services.public_s3, row, inline=call.body.inline)
    return DownloadOut(url=url, expires_in_s=services.settings.files_download_ttl_s)


async def delete(call: Call[Any], *, services: Services) -> dict[str, bool]:
    await service.delete(services, call.user.user_id, call.uuid_param("id"))
    return {"deleted": True}


async def limits(call: Call[Any], *, services: Services) -> LimitsOut:
    async with (services.db).connection() as conn:
        tier, cap = await service.max_bytes(conn, services, call.user.user_id)
    return LimitsOut(**service.limits_of(services, tier, cap))


ROUTES = RouteTable(
    "files",
    [
        Route("POST", "/v1/files/upload", upload,
              "Upload one file (multipart field 'file'; optional context_id, chunk_size,"
              " chunk_overlap), streamed to the object store", access=Access.USER,
              form_model=UploadForm, response_model=UploadOut, status=201,
              rate_limit="uploads"),
        Route("POST", "/v1/files/presign", presign,
              "A presigned POST for a large file; then POST /v1/files/{id}/complete",
              access=Access.USER, request_model=PresignIn, response_model=PresignOut,
              status=201, rate_limit="uploads"),
        Route("POST", "/v1/files/{id}/complete", complete,
              "Confirm a presigned upload (optionally attach it to a context)",
              access=Access.USER, request_model=CompleteIn, response_model=UploadOut),
        Route("GET", "/v1/files", list_files, "The user's files, newest first",
              access=Access.USER, request_model=FileQuery, response_model=FilePage),
        Route("GET", "/v1/files/limits", limits, "Size cap of the user's plan, allowed types",
              access=Access.USER, response_model=LimitsOut),
        Route("GET", "/v1/files/{id}", get_file, "A file's metadata and ingestion per context",
              access=Access.USER, response_model=FileOut),
        Route("GET", "/v1/files/{id}/download", download,
              "A signed download URL (10 minutes, saved as an attachment; `inline=true`: shown by"
              " the browser, text as plain text, PDF as PDF)",
              access=Access.USER, request_model=DownloadQuery, response_model=DownloadOut),
        Route("DELETE", "/v1/files/{id}", delete, "Delete a file, its object and its chunks",
              access=Access.USER),
    ],
    **perimeter(),
)  # fmt: skip
