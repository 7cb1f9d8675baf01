"""The "Your data export is ready" mail. Queued through the outbox to MailQueue like the
account mail (shared.domain.accounts.mail) and sent by the mailer; it carries no download
link of its own (a presigned URL would outlive its purpose in a mailbox): it opens Settings ->
Your data in the app, where a signed-in user gets a short-lived one."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Literal

import psycopg

from shared.domain.accounts.mail import MAIL_QUEUE
from shared.platform.outbox import enqueue
from shared.platform.settings import Settings

EXPORT_READY = "export_ready"
ExportMailKind = Literal["export_ready"]


async def queue_export_ready(conn: psycopg.AsyncConnection, user_id: str, export_id: str) -> None:
    await enqueue(conn, queue=MAIL_QUEUE, body={"kind": EXPORT_READY, "user_id": user_id,
                  "export_id": export_id}, dedup_key=f"mail:export_ready:{export_id}")  # fmt: skip


def export_link(settings: Settings, export_id: str) -> str:
    return f"{settings.public_url}/settings?export={export_id}"


def compose_export_ready(settings: Settings, to: str, export_id: str) -> EmailMessage:
    days = max(1, settings.export_ttl_s // 86_400)
    text = (
        "The export of your data you asked for is ready. Open this link, signed in, to"
        f" download it:\n\n{export_link(settings, export_id)}\n\nThe file is kept for {days}"
        f" day{'s' if days != 1 else ''}, then deleted. If you did not ask for an export,"
        " change your password: someone else may be signed in to your account."
    )
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = "Your data export is ready"
    message["X-Mail-Kind"] = EXPORT_READY
    message.set_content(text, cte="7bit" if text.isascii() else None)
    return message
