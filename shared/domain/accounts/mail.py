"""Account mail: verification and password-reset messages, delivered through the outbox.

A request only enqueues `{kind, user_id}` (in its transaction, via the outbox) to `MailQueue`;
the mailer function issues the single-use token when it sends, so no token ever sits in
Postgres or in a queue, and renders and sends the message over SMTP (`smtplib`, STARTTLS when
configured; locally the loopback sink of infra/stack/mailsink.py).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any, Literal

import psycopg

from shared.platform.outbox import enqueue
from shared.platform.settings import Settings

MAIL_QUEUE = "MailQueue"
MailKind = Literal["verify_email", "password_reset"]


async def queue_mail(conn: psycopg.AsyncConnection, kind: MailKind, user_id: str) -> None:
    await enqueue(conn, queue=MAIL_QUEUE, body={"kind": kind, "user_id": user_id})


def compose(settings: Settings, kind: MailKind, to: str, token: str) -> EmailMessage:
    base = settings.public_url
    if kind == "verify_email":
        subject = "Confirm your email address"
        link = f"{base}/verify-email#token={token}"
        text = (
            "Welcome! Confirm that this address is yours by opening this link:\n\n"
            f"{link}\n\nThe link works once and expires in "
            f"{settings.auth_verify_ttl_s // 3600} hours. If you did not sign up, ignore this mail."
        )
    else:
        subject = "Reset your password"
        link = f"{base}/reset-password#token={token}"
        text = (
            "Someone (hopefully you) asked to reset the password of this account. Open this link "
            f"to choose a new one:\n\n{link}\n\nThe link works once and expires in "
            f"{settings.auth_reset_ttl_s // 60} minutes. Resetting ends every signed-in session. "
            "If you did not ask for this, ignore this mail: your password stays as it is."
        )
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["X-Mail-Kind"] = kind
    # Plain 7-bit when it can be, so the link reads as it is in a raw .eml (dev mail folder).
    message.set_content(text, cte="7bit" if text.isascii() else None)
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    """Blocking SMTP delivery (run it in a thread)."""
    host, port = settings.smtp_address
    with smtplib.SMTP(host, port, timeout=settings.dependency_timeout_s * 5) as smtp:
        if settings.smtp_host and settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def token_from(message: Any) -> str:
    """The token in a composed message's link (tests and the dev mail reader use it)."""
    body = message.get_body(preferencelist=("plain",)).get_content()
    return str(body.split("#token=", 1)[1].split()[0])
