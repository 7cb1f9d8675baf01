"""Helpers for the auth tests: accounts through the API, and the mail the sink delivered."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx

from shared.domain.accounts.mail import token_from
from tests.helpers import wait_for

PASSWORD = "correct horse battery staple"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.test"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(client: httpx.AsyncClient, address: str | None = None) -> dict:
    response = await client.post(
        "/v1/auth/signup", json={"email": address or new_email(), "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def mails_to(mail_dir: Path, address: str, kind: str) -> list[EmailMessage]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and message["X-Mail-Kind"] == kind:
            found.append(message)
    return found


def wait_for_mail(mail_dir: Path, address: str, kind: str, *, count: int = 1) -> str:
    """The token in the `count`-th mail of `kind` to `address` (the dispatcher runs the mailer)."""
    started = time.monotonic()
    messages = wait_for(
        lambda: (found := mails_to(mail_dir, address, kind)) and len(found) >= count and found,
        timeout_s=60,
        what=f"{kind} mail to {address} ({time.monotonic() - started:.0f}s)",
    )
    return token_from(messages[count - 1])
