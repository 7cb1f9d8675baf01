"""Mailer queue function: sends account mail (verification, password reset) queued through the
outbox. It issues the single-use token itself, so tokens never rest in Postgres or a queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel

from shared.domain.account_data.mail import ExportMailKind, compose_export_ready
from shared.domain.accounts import accounts
from shared.domain.accounts.mail import MailKind, compose, send
from shared.domain.accounts.onetime import OneTimeTokens
from shared.platform import outbox
from shared.platform.errors import NotFound
from shared.platform.runtime.batch import SqsRecord, queue_function
from shared.services import Services

log = logging.getLogger(__name__)
SENT_TTL_S = 86_400


class MailRequest(BaseModel):
    kind: MailKind | ExportMailKind
    user_id: str
    export_id: str | None = None  # export_ready: the export the mail links to


async def handle(record: SqsRecord, *, services: Services) -> None:
    request = MailRequest.model_validate(record.payload())
    outbox_id = (record.messageAttributes.get("outbox_id") or {}).get("stringValue")
    async with services.db.connection() as conn, conn.transaction():
        if outbox_id is None:  # not from the outbox: only a Redis marker guards a redelivery
            sent_key = f"mail:sent:{record.messageId}"
            if not await services.redis.exists(sent_key):
                await _deliver(conn, request, services)
                await services.redis.set(sent_key, "1", ex=SENT_TTL_S)
            return
        # Delivery is at least once (a redelivery, or a re-drive after the queue server lost
        # its messages): the outbox row, locked while the mail goes out, says whether it was
        # sent. One connection for the lock, the recipient and the mark.
        if not await outbox.claim(conn, int(outbox_id)):
            log.info("mail %s already sent", request.kind)
            return
        await _deliver(conn, request, services)
        await outbox.mark_done(conn, int(outbox_id))


async def _deliver(conn: Any, request: MailRequest, services: Services) -> None:
    settings = services.settings
    try:
        user = await accounts.user_on(conn, request.user_id)
    except NotFound:
        log.info("mail %s dropped: the account is gone", request.kind)
        return
    kind = request.kind
    if kind == "export_ready":  # a link into the app, no token (account_data)
        message = compose_export_ready(settings, user.email, request.export_id or "")
        await asyncio.to_thread(send, settings, message)
        log.info("mail %s sent", kind)
        return
    if kind == "verify_email" and user.email_verified:
        return
    verify = kind == "verify_email"
    ttl = settings.auth_verify_ttl_s if verify else settings.auth_reset_ttl_s
    token = await OneTimeTokens(services.redis).issue(kind, user.id, ttl_s=ttl)
    await asyncio.to_thread(send, settings, compose(settings, kind, user.email, token))
    log.info("mail %s sent", request.kind)


ROUTES = queue_function("mailer", handle, "SQS batch of account mail")
