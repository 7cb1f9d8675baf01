"""The files function through the gateway on the real stack (Postgres, SeaweedFS S3, moto
SQS): streamed uploads, names, limits, duplicates, presigned uploads, downloads, delete,
tenancy. Ingestion itself is in test_rag.py."""

from __future__ import annotations

import httpx
import pytest

from shared.services import Services
from tests.integration.chatkit import user
from tests.integration.conftest import gateway_client
from tests.integration.ragkit import FILES, new_context, upload

pytestmark = pytest.mark.integration


def objects_under(services: Services, prefix: str) -> list[str]:
    listed = services.s3.list_objects_v2(Bucket=services.bucket(), Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


async def file_rows(services: Services, user_id: str) -> int:
    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM user_file WHERE owner_user_id = %s", (user_id,)
            )
        ).fetchone()
    return int(row[0])


def open_fixture(name: str) -> bytes:
    return (FILES / name).read_bytes()


async def test_upload_list_get_download_delete(api, services):
    user_id, headers = await user(api)
    sent = await upload(api, headers, "guide.md")
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    file = data["file"]
    assert (data["fs_path"], data["duplicate"], data["ingestion_queued"]) == (
        "guide.md", False, False)  # fmt: skip
    assert file["status"] == "stored" and file["kind"] == "markdown"
    assert file["size_bytes"] == len(upload_bytes := open_fixture("guide.md"))
    assert objects_under(services, f"users/{user_id}/files/{file['id']}/") == [
        f"users/{user_id}/files/{file['id']}/guide.md"]  # fmt: skip

    listed = (await api.get("/v1/files", headers=headers)).json()["data"]
    assert [f["id"] for f in listed["items"]] == [file["id"]]
    got = (await api.get(f"/v1/files/{file['id']}", headers=headers)).json()["data"]
    assert got["checksum"] == file["checksum"] and got["contexts"] == []

    link = (await api.get(f"/v1/files/{file['id']}/download", headers=headers)).json()["data"]
    assert link["expires_in_s"] == 600
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(link["url"])
    assert fetched.status_code == 200 and fetched.content == upload_bytes
    assert fetched.headers["content-disposition"].startswith("attachment;")

    gone = await api.delete(f"/v1/files/{file['id']}", headers=headers)
    assert gone.status_code == 200
    assert (await api.get(f"/v1/files/{file['id']}", headers=headers)).status_code == 404
    assert objects_under(services, f"users/{user_id}/files/") == []


async def test_names_are_sanitized_so_keys_stay_under_the_users_prefix(api, services):
    user_id, headers = await user(api)
    sent = await upload(api, headers, "../../other/..\\secrets/notes.md", b"# Notes\nhello")
    assert sent.status_code == 201, sent.text
    file = sent.json()["data"]["file"]
    assert file["name"] == "notes.md"
    assert objects_under(services, f"users/{user_id}/") == [
        f"users/{user_id}/files/{file['id']}/notes.md"
    ]


async def test_disallowed_type_and_oversize_are_refused_and_nothing_stays(api, services, settings):
    user_id, headers = await user(api)
    refused = await upload(api, headers, "tool.exe", b"MZ\x90\x00binary")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "validation_error" and ".pdf" in error["message"]

    small = Services.from_settings(
        settings.model_copy(update={"files_max_bytes_by_tier": {"free": 1000}})
    )
    async with gateway_client(settings, small) as limited:
        limits = (await limited.get("/v1/files/limits", headers=headers)).json()["data"]
        assert limits["max_bytes"] == 1000 and limits["plan_tier"] == "free"
        too_big = await upload(limited, headers, "big.txt", b"word " * 400)
        assert too_big.status_code == 413, too_big.text
        assert too_big.json()["error"]["details"]["max_bytes"] == 1000
        # Declared far over the cap: refused on its Content-Length, before the body is read.
        declared = await upload(limited, headers, "huge.txt", b"x" * (80 << 10))
        assert declared.status_code == 413 and "free plan" in declared.json()["error"]["message"]
        presign = await limited.post("/v1/files/presign", headers=headers,
                                     json={"filename": "big.pdf", "size_bytes": 5000})  # fmt: skip
        assert presign.status_code == 413
    await small.aclose()

    assert objects_under(services, f"users/{user_id}/") == []
    assert await file_rows(services, user_id) == 0


async def test_malformed_bodies_get_clear_errors(api):
    _, headers = await user(api)
    not_multipart = await api.post("/v1/files/upload", headers=headers, json={"file": "x"})
    assert not_multipart.status_code == 415
    assert "multipart" in not_multipart.json()["error"]["message"]
    no_file = await api.post("/v1/files/upload", headers=headers, data={"context_id": "x"},
                             files={"other": ("a.txt", b"hi")})  # fmt: skip
    assert no_file.status_code == 400
    bad_window = await upload(api, headers, "a.txt", b"hello", chunk_size="12")
    assert bad_window.status_code == 400 and "chunk size" in bad_window.json()["error"]["message"]


async def test_duplicate_upload_is_the_same_file_and_not_queued_again(api, services):
    user_id, headers = await user(api)
    context_id = await new_context(api, headers)
    first = (await upload(api, headers, "guide.md", context_id=context_id)).json()["data"]
    assert first["ingestion_queued"] is True
    again = await upload(api, headers, "guide.md", context_id=context_id)
    assert again.status_code == 201
    second = again.json()["data"]
    assert second["duplicate"] is True and second["ingestion_queued"] is False
    assert second["file"]["id"] == first["file"]["id"]
    assert len(objects_under(services, f"users/{user_id}/files/")) == 1
    changed = (await upload(api, headers, "guide.md", b"# Other\ntext")).json()["data"]
    assert changed["duplicate"] is False and changed["file"]["id"] != first["file"]["id"]


async def test_fields_after_the_file_part_count_and_a_bad_one_keeps_nothing(api, services):
    user_id, headers = await user(api)
    context_id = await new_context(api, headers)
    boundary = "l4te"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="late.md"\r\n'
        "Content-Type: text/markdown\r\n\r\n# Late\nfields after the file\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="context_id"\r\n\r\n'
        f"{context_id}\r\n--{boundary}--\r\n"
    ).encode()
    form = {**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    sent = await api.post("/v1/files/upload", content=body, headers=form)
    assert sent.status_code == 201, sent.text
    data = sent.json()["data"]
    assert (data["context_id"], data["ingestion_queued"]) == (context_id, True)
    other = body.replace(b"# Late", b"# Other").replace(
        context_id.encode(), b"00000000-0000-4000-8000-00000000dead"
    )
    refused = await api.post("/v1/files/upload", content=other, headers=form)
    assert refused.status_code == 404, refused.text
    assert await file_rows(services, user_id) == 1
    assert len(objects_under(services, f"users/{user_id}/files/")) == 1


async def test_presigned_upload_then_complete(api):
    _, headers = await user(api)
    body = b"Presigned uploads go straight to the object store.\n" * 20
    made = await api.post("/v1/files/presign", headers=headers,
                          json={"filename": "direct.txt", "size_bytes": len(body)})  # fmt: skip
    assert made.status_code == 201, made.text
    grant = made.json()["data"]
    file_id = grant["file"]["id"]
    assert grant["file"]["status"] == "uploading"
    early = await api.post(f"/v1/files/{file_id}/complete", headers=headers, json={})
    assert early.status_code == 400
    async with httpx.AsyncClient() as plain:
        posted = await plain.post(grant["url"], data=grant["fields"],
                                  files={"file": ("direct.txt", body)})  # fmt: skip
    assert posted.status_code in (200, 201, 204), posted.text
    done = await api.post(f"/v1/files/{file_id}/complete", headers=headers, json={})
    assert done.status_code == 200, done.text
    file = done.json()["data"]["file"]
    assert (file["status"], file["size_bytes"]) == ("stored", len(body))
    again = await api.post(f"/v1/files/{file_id}/complete", headers=headers, json={})
    assert again.status_code == 400


async def test_other_users_files_and_contexts_are_invisible(api):
    _, alice = await user(api)
    _, bob = await user(api)
    file_id = (await upload(api, alice, "guide.md")).json()["data"]["file"]["id"]
    context_id = await new_context(api, alice)
    for method, path in (("GET", f"/v1/files/{file_id}"),
                         ("GET", f"/v1/files/{file_id}/download"),
                         ("DELETE", f"/v1/files/{file_id}"),
                         ("GET", f"/v1/contexts/{context_id}"),
                         ("GET", f"/v1/contexts/{context_id}/chunks"),
                         ("GET", f"/v1/contexts/{context_id}/stats"),
                         ("DELETE", f"/v1/contexts/{context_id}")):  # fmt: skip
        answer = await api.request(method, path, headers=bob)
        assert answer.status_code == 404, (method, path, answer.text)
    bobs_context = await new_context(api, bob)
    stolen = await api.post(f"/v1/contexts/{bobs_context}/files", headers=bob,
                            json={"file_ids": [file_id]})  # fmt: skip
    assert stolen.status_code == 404
    into_alices = await upload(api, bob, "mine.md", b"# Mine\ntext", context_id=context_id)
    assert into_alices.status_code == 404
    assert (await api.get("/v1/files", headers=bob)).json()["data"]["items"] == []
