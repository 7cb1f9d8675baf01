"""The files function's two ways in (a multipart upload, a completed presigned upload), each
stored and, when the request names a `context_id`, attached to that context in the same
transaction, its ingestion queued (`shared.domain.rag.attach`). Here, in the function, because it
composes two packages that know nothing of each other: files, and contexts with ingestion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.files.multipart import FORM_OVERHEAD_BYTES, FormReader
from shared.domain.files import service, store
from shared.domain.files.store import FileRow
from shared.domain.rag import contexts
from shared.domain.rag.attach import Attacher, attaching
from shared.platform.clients import Clients
from shared.platform.errors import ValidationError


@dataclass(frozen=True)
class Uploaded:
    file: FileRow
    duplicate: bool
    context_id: str | None
    queued: bool


def form_settings(fields: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """The optional `context_id`, `chunk_size`, `chunk_overlap` fields of an upload form."""
    context_id = fields.get("context_id") or None
    overrides: dict[str, Any] = {}
    for key in ("chunk_size", "chunk_overlap"):
        if fields.get(key):
            if not fields[key].strip().isdigit():
                raise ValidationError(f"{key} must be a whole number of tokens")
            overrides[key] = int(fields[key])
    if overrides:
        contexts.check_settings(overrides)
    return context_id, overrides


async def _attach_to(
    attach: Attacher, user: Any, context_id: str | None, file_id: str,
    overrides: dict[str, Any],
) -> None:  # fmt: skip
    if context_id:
        context = await contexts.get_writable(
            attach.conn, user.user_id, context_id, is_admin=user.is_admin
        )
        await attach(context, user.user_id, [file_id], overrides)


async def upload(clients: Clients, user: Any, form: FormReader) -> Uploaded:
    tier, cap = await service.plan_cap(clients, user.user_id)
    if (form.declared_bytes or 0) > cap + FORM_OVERHEAD_BYTES:
        raise service.over_cap(cap, tier)  # refused before a byte of it is read
    part = await form.file_part()
    # The file's stream ends only after the whole body is read, so the fields after the file
    # part are in `form.fields` once `receive` returns.
    received = await service.receive(
        clients, user.user_id, filename=part.filename, chunks=form.file_bytes(), cap=cap
    )
    async with service.keeping(received) as kept:
        context_id, overrides = form_settings(form.fields)
        pool = clients.db
        async with attaching(pool, sqs=clients.sqs, queues=clients.queues) as attach:
            stored = await service.record(attach.conn, user.user_id, received)
            await _attach_to(attach, user, context_id, stored.file.id, overrides)
            file = await store.get(attach.conn, user.user_id, stored.file.id)
        kept.append(stored)
    return Uploaded(file, stored.duplicate, context_id, attach.queued)


async def complete(
    clients: Clients, user: Any, file_id: str, *, context_id: str | None,
    overrides: dict[str, Any],
) -> Uploaded:  # fmt: skip
    size, checksum = await service.verify_upload(clients, user.user_id, file_id)
    async with attaching(clients.db, sqs=clients.sqs, queues=clients.queues) as attach:
        row = await service.mark_stored(
            attach.conn, user.user_id, file_id, size=size, checksum=checksum
        )
        await _attach_to(attach, user, context_id, row.id, overrides)
        file = await store.get(attach.conn, user.user_id, file_id)
    return Uploaded(file, False, context_id, attach.queued)
