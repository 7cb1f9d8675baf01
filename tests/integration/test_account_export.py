"""A user's data export (issue 23 item 4): POST /v1/me/export queues it, ExportQueue brings
it to the account_data function, which writes one zip of everything the user has to the store
and mails a link into the app, where a short-lived presigned URL downloads it. Only the owner
sees an export; a zip past its expiry is removed by the hourly schedule; a failed export
leaves no object and goes to the DLQ with its reason."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import httpx
import pytest

from functions.mailer.main import handle as mail
from shared.domain.account_data.exports import object_key
from shared.platform.runtime.batch import SqsRecord
from shared.services import Services
from tests.integration.accountkit import (
    deliver,
    export_row,
    pending_message,
    post_events,
    record,
    user_with_data,
)
from tests.integration.authkit import bearer, mails_to, sign_up
from tests.integration.queuekit import queue_url
from tests.integration.voicekit import clip_row

pytestmark = pytest.mark.integration


async def _export(api, services, user: dict) -> str:
    queued = await api.post("/v1/me/export", headers=user["headers"])
    assert queued.status_code == 202, queued.text
    export = queued.json()["data"]["export"]
    assert export["status"] == "queued" and export["size_bytes"] is None
    return str(export["id"])


async def test_an_export_holds_all_of_its_users_data_and_nothing_else(api, services, settings):
    owner, other = await user_with_data(api, services), await user_with_data(api, services)
    export_id = await _export(api, services, owner)
    again = await api.post("/v1/me/export", headers=owner["headers"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "export_in_progress"
    body = await pending_message(services, "ExportQueue", "export_id", export_id)
    assert await deliver(services, "ExportQueue", body) == []

    got = await api.get(f"/v1/me/exports/{export_id}", headers=owner["headers"])
    export = got.json()["data"]["export"]
    assert export["status"] == "ready" and export["size_bytes"] > 0 and export["expires_at"]
    listed = (await api.get("/v1/me/exports", headers=owner["headers"])).json()["data"]
    assert listed["items"][0]["id"] == export_id
    link = await api.get(f"/v1/me/exports/{export_id}/download", headers=owner["headers"])
    assert link.status_code == 200, link.text
    async with httpx.AsyncClient() as plain:  # a plain GET, as the browser makes it
        fetched = await plain.get(link.json()["data"]["url"])
    assert fetched.status_code == 200
    assert len(fetched.content) == export["size_bytes"]

    archive = zipfile.ZipFile(io.BytesIO(fetched.content))
    names = set(archive.namelist())
    manifest = json.loads(archive.read("manifest.json"))
    assert {p["file"] for p in manifest["parts"]} - {"objects/"} <= names

    def rows(part: str) -> list[dict]:
        return list(json.loads(archive.read(f"{part}.json")))

    assert owner["conversation_id"] in {r["id"] for r in rows("conversations")}
    assert {r["user_id"] for r in rows("conversations")} == {owner["id"]}
    assert any(owner["marker"] in (m["content"] or "") for m in rows("messages"))
    assert [f["id"] for f in rows("files")] == [owner["file_id"]]
    uploaded = [n for n in names if n.startswith(f"objects/files/{owner['file_id']}/")]
    assert [archive.read(n) for n in uploaded] == [owner["file_bytes"]]  # the original upload
    assert [c["id"] for c in rows("contexts")] == [owner["context_id"]]
    assert len(rows("preference_events")) == 1
    assert owner["adapter_id"] in {a["id"] for a in rows("artifacts")}
    assert any(v["artifact_id"] == owner["adapter_id"] for v in rows("artifact_versions"))
    weights = "objects/" + owner["adapter_prefix"].split("/", 2)[2] + "adapter_model.safetensors"
    assert archive.read(weights) == owner["weights"]
    assert [c["id"] for c in rows("voice_clips")] == [owner["clip_id"]]
    assert [n for n in names if n.startswith(f"objects/voice/{owner['clip_id']}.")]
    assert rows("account")[0]["email"] == owner["email"]
    assert not any("password" in json.dumps(r) for r in rows("account"))
    for name in names:  # nothing of the other user, anywhere
        content = archive.read(name)
        for secret in (other["id"], other["marker"], other["email"]):
            assert secret.encode() not in content, (name, secret)

    # The "ready" mail, as the mailer sends it from MailQueue: a link into the app.
    mail_body = await pending_message(services, "MailQueue", "export_id", export_id)
    await mail(SqsRecord.model_validate(record(services, "MailQueue", mail_body)),
               services=services)  # fmt: skip
    sent = mails_to(settings.mail_dir, owner["email"], "export_ready")
    assert len(sent) == 1 and sent[0]["Subject"] == "Your data export is ready"
    text = sent[0].get_body(preferencelist=("plain",)).get_content()
    assert f"{settings.public_url}/settings?export={export_id}" in text

    for path in (f"/v1/me/exports/{export_id}", f"/v1/me/exports/{export_id}/download"):
        as_other = await api.get(path, headers=other["headers"])
        assert as_other.status_code == 404, path
    assert export_id not in str((await api.get("/v1/me/exports", headers=other["headers"])).json())


async def test_only_a_ready_unexpired_export_downloads(api, services):
    signed = await sign_up(api)
    uid, headers = signed["user"]["id"], bearer(signed["access_token"])
    for status in ("queued", "failed", "running"):  # one in flight at a time: running last
        if status == "running":
            async with services.db.connection() as conn:
                await conn.execute("DELETE FROM account_export WHERE user_id = %s", (uid,))
        export_id = await export_row(uid, status=status)
        answer = await api.get(f"/v1/me/exports/{export_id}/download", headers=headers)
        assert answer.status_code == 409, (status, answer.text)
        assert answer.json()["error"]["code"] == "export_not_ready"
    for status, expires_in_s in (("expired", 3600), ("ready", -60)):
        export_id = await export_row(uid, status=status, expires_in_s=expires_in_s)
        answer = await api.get(f"/v1/me/exports/{export_id}/download", headers=headers)
        assert answer.status_code == 410, (status, answer.text)
        assert answer.json()["error"]["code"] == "export_expired"
    missing = await api.get(f"/v1/me/exports/{uuid.uuid4()}/download", headers=headers)
    assert missing.status_code == 404


async def test_the_schedule_removes_expired_zips(api, services):
    signed = await sign_up(api)
    uid = signed["user"]["id"]
    old = await export_row(uid, expires_in_s=-60)
    fresh = await export_row(uid, expires_in_s=3600)
    for export_id in (old, fresh):
        services.s3.put_object(Bucket=services.bucket(), Key=object_key(uid, export_id), Body=b"z")
    swept = await post_events(services, {"source": "aws.events", "detail-type": "Scheduled Event"})
    assert swept["data"]["expired_exports"] >= 1
    listed = services.s3.list_objects_v2(Bucket=services.bucket(), Prefix=f"exports/{uid}/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [object_key(uid, fresh)]
    got = await api.get(f"/v1/me/exports/{old}", headers=bearer(signed["access_token"]))
    assert got.json()["data"]["export"]["status"] == "expired"


async def test_a_failed_export_leaves_nothing_and_goes_to_the_dlq(api, settings):
    # A real limit: an export over EXPORT_MAX_BYTES can never pass, so it fails at once.
    small = Services.from_settings(settings.model_copy(update={"export_max_bytes": 1024}))
    try:
        signed = await sign_up(api)
        uid, headers = signed["user"]["id"], bearer(signed["access_token"])
        await clip_row(uid, audio=b"RIFF" + bytes(4096))  # over the limit by itself
        export_id = await _export(api, small, {"headers": headers})
        body = await pending_message(small, "ExportQueue", "export_id", export_id)
        assert await deliver(small, "ExportQueue", body) == []  # in the DLQ, not retried
        export = (await api.get(f"/v1/me/exports/{export_id}", headers=headers)).json()["data"]
        assert export["export"]["status"] == "failed"
        assert "EXPORT_MAX_BYTES" in export["export"]["error"]
        listed = small.s3.list_objects_v2(Bucket=small.bucket(), Prefix=f"exports/{uid}/")
        assert listed.get("KeyCount", 0) == 0
        dlq = queue_url(small.sqs, small.template, "ExportDeadLetterQueue")
        found = []
        for _ in range(20):
            got = small.sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                WaitTimeSeconds=1,
            )  # fmt: skip
            for message in got.get("Messages", []):
                if json.loads(message["Body"]).get("export_id") == export_id:
                    found.append(message)
                    small.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            if found:
                break
        assert len(found) == 1
        reason = found[0]["MessageAttributes"]["failure_reason"]["StringValue"]
        assert "ExportTooLarge" in reason and "EXPORT_MAX_BYTES" in reason
        # The user may ask again: the failed one holds nothing up.
        assert (await api.post("/v1/me/export", headers=headers)).status_code == 202
    finally:
        await small.aclose()
