"""Email verification and password reset, end to end: the auth function enqueues through the
outbox, the real dispatcher runs the mailer function, the loopback SMTP sink files the mail,
and the test reads the link out of it."""

from __future__ import annotations

import pytest

from tests.integration.authkit import PASSWORD, bearer, mails_to, sign_up, wait_for_mail

pytestmark = pytest.mark.integration
NEW_PASSWORD = "a different long passphrase"


async def test_sign_up_mails_a_single_use_verification_link(api, workers, settings) -> None:
    signed = await sign_up(api)
    address, headers = signed["user"]["email"], bearer(signed["access_token"])
    assert signed["user"]["email_verified"] is False
    token = wait_for_mail(settings.mail_dir, address, "verify_email")
    verified = await api.post("/v1/auth/verify_email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["data"]["email_verified"] is True
    assert (await api.get("/v1/me", headers=headers)).json()["data"]["email_verified"] is True
    again = await api.post("/v1/auth/verify_email", json={"token": token})
    assert again.status_code == 400 and "expired" in again.json()["error"]["message"]
    # Verified: asking for another mail sends nothing.
    resend = await api.post("/v1/auth/verify_email/resend", headers=headers)
    assert resend.json()["data"]["accepted"] is False


async def test_password_reset_changes_the_password_and_ends_every_session(
    api, workers, settings
) -> None:
    signed = await sign_up(api)
    address = signed["user"]["email"]
    other = await api.post("/v1/auth/login", json={"email": address, "password": PASSWORD})
    sessions = [signed, other.json()["data"]]
    asked = await api.post("/v1/auth/request_reset", json={"email": address})
    assert asked.status_code == 202
    token = wait_for_mail(settings.mail_dir, address, "password_reset")
    weak = await api.post("/v1/auth/complete_reset", json={"token": token, "new_password": "short"})
    assert weak.status_code == 400  # refused before the token is spent
    reset = await api.post(
        "/v1/auth/complete_reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text
    for session in sessions:  # every session ended: access and refresh tokens alike
        me = await api.get("/v1/me", headers=bearer(session["access_token"]))
        assert me.status_code == 401
        refreshed = await api.post(
            "/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
        )
        assert refreshed.status_code == 401
    old = await api.post("/v1/auth/login", json={"email": address, "password": PASSWORD})
    new = await api.post("/v1/auth/login", json={"email": address, "password": NEW_PASSWORD})
    assert old.status_code == 401 and new.status_code == 200
    replay = await api.post(
        "/v1/auth/complete_reset", json={"token": token, "new_password": PASSWORD}
    )
    assert replay.status_code == 400  # single use
    # The mailer (another process) logged its work, but neither the token nor a password.
    logged = "".join(path.read_text() for path in workers.glob("*.log"))
    assert "mail password_reset sent" in logged
    for secret in (token, PASSWORD, NEW_PASSWORD):
        assert secret not in logged


async def test_request_reset_says_the_same_for_unknown_emails(api, workers, settings) -> None:
    unknown = await api.post("/v1/auth/request_reset", json={"email": "nobody@example.test"})
    signed = await sign_up(api)
    known = await api.post("/v1/auth/request_reset", json={"email": signed["user"]["email"]})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json()["data"] == known.json()["data"]
    wait_for_mail(settings.mail_dir, signed["user"]["email"], "password_reset")
    assert not mails_to(settings.mail_dir, "nobody@example.test", "password_reset")


async def test_a_bad_mail_message_goes_to_the_dlq_with_its_reason(settings, workers) -> None:
    """The mailer refuses a message it cannot read; after the queue's receives it lands in the
    mail DLQ with the reason attached."""
    import asyncio
    import json

    from shared.platform.aws import sqs_client
    from shared.platform.template import load_template
    from tests.helpers import wait_for

    template = load_template(settings.template_path, settings)
    sqs = sqs_client(settings)
    queue = template.queues["MailQueue"]
    url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=template.queues[queue.dead_letter_queue].name)["QueueUrl"]
    marker = "not-a-uuid-" + settings.stack_name
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "spam", "user_id": marker}))

    def dead_lettered():
        got = sqs.receive_message(
            QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1, MaxNumberOfMessages=10
        )
        return [m for m in got.get("Messages", []) if marker in m["Body"]]

    found = await asyncio.to_thread(
        wait_for, dead_lettered, timeout_s=120, interval_s=0.5, what="the bad mail in the DLQ"
    )
    reason = found[0]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "ValidationError" in reason and "kind" in reason
