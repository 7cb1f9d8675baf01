"""Mailer queue function: sends account mail (verification, password reset) queued through the
outbox. It issues the single-use token itself, so tokens never rest in Postgres or a queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import functions_framework.aio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from shared.auth import accounts
from shared.auth.mail import MailKind, compose, send
from shared.auth.onetime import OneTimeTokens
from shared.deps import get_deps
from shared.errors import NotFound
from shared.runtime.batch import SqsBatch, SqsRecord, process_batch
from shared.runtime.routes import Access, Call, Route, RouteTable

log = logging.getLogger(__name__)
SENT_TTL_S = 86_400


class MailRequest(BaseModel):
    kind: MailKind
    user_id: str


async def handle(record: SqsRecord) -> None:
    request = MailRequest.model_validate(record.payload())
    deps = get_deps()
    settings = deps.settings
    # Delivery is at least once: a message already sent (same outbox row) is not sent again.
    outbox_id = (record.messageAttributes.get("outbox_id") or {}).get("stringValue")
    sent_key = f"mail:sent:{outbox_id or record.messageId}"
    if await deps.redis.exists(sent_key):
        return
    try:
        user = await accounts.get_user(await deps.db.get(), request.user_id)
    except NotFound:
        log.info("mail %s dropped: the account is gone", request.kind)
        return
    if request.kind == "verify_email" and user.email_verified:
        return
    verify = request.kind == "verify_email"
    ttl = settings.auth_verify_ttl_s if verify else settings.auth_reset_ttl_s
    token = await OneTimeTokens(deps.redis).issue(request.kind, user.id, ttl_s=ttl)
    await asyncio.to_thread(send, settings, compose(settings, request.kind, user.email, token))
    await deps.redis.set(sent_key, "1", ex=SENT_TTL_S)
    log.info("mail %s sent", request.kind)


async def events(call: Call[Any]) -> Response:
    assert isinstance(call.body, SqsBatch)
    return await process_batch(call.body, handle, get_deps())


ROUTES = RouteTable(
    "mailer",
    [
        Route("POST", "/events", events, "SQS batch of account mail", access=Access.INTERNAL,
              request_model=SqsBatch),
    ],
)  # fmt: skip


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    return await ROUTES.dispatch(request)
