"""What the web app's "Cited passage" panel reads: `GET /v1/chunks/{id}`, one chunk of a
context the caller may read (what a citation's `chunk_id` names), with its file's name
(another user's chunk is 404 as an unknown one, and an id that is no chunk id is 404 too, the
API's style for ids); and `GET /v1/files/{id}/download?inline=true`, a link the browser shows
rather than saves, never as HTML."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.authkit import bearer, sign_up
from tests.integration.ragkit import chunk_row, new_context, upload

pytestmark = pytest.mark.integration


async def test_a_chunk_is_read_by_its_owner_only(api) -> None:
    alice, bob = await sign_up(api), await sign_up(api)
    a_headers, b_headers = bearer(alice["access_token"]), bearer(bob["access_token"])
    context_id = await new_context(api, a_headers)
    sent = await upload(api, a_headers, "notes.md", b"# Garden\nWater the tomatoes daily.")
    assert sent.status_code == 201, sent.text
    file_id = sent.json()["data"]["file"]["id"]
    passage = "Water the tomatoes every morning before nine."
    chunk_id = await chunk_row(context_id, file_id, passage, heading="Garden", page=2)

    mine = await api.get(f"/v1/chunks/{chunk_id}", headers=a_headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["data"] == {
        "id": chunk_id, "context_id": context_id, "file_id": file_id, "file_name": "notes.md",
        "content": passage, "heading": "Garden", "page": 2, "start": 0, "end": len(passage),
    }  # fmt: skip

    theirs = await api.get(f"/v1/chunks/{chunk_id}", headers=b_headers)
    assert theirs.status_code == 404, theirs.text
    assert theirs.json()["error"]["code"] == "not_found"
    assert passage not in theirs.text
    anonymous = await api.get(f"/v1/chunks/{chunk_id}")
    assert anonymous.status_code == 401

    # Deleting the context takes its chunks with it.
    assert (await api.delete(f"/v1/contexts/{context_id}", headers=a_headers)).status_code == 200
    gone = await api.get(f"/v1/chunks/{chunk_id}", headers=a_headers)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "bad", ["abc", "0", "-1", "1.5", "99999999999999999999", "%EF%BC%91", "9223372036854775807"]
)
async def test_an_id_that_names_no_chunk_is_404(api, bad: str) -> None:
    user = await sign_up(api)
    answer = await api.get(f"/v1/chunks/{bad}", headers=bearer(user["access_token"]))
    assert answer.status_code == 404, (bad, answer.text)
    assert answer.json()["error"]["code"] == "not_found"


async def test_an_inline_link_shows_the_file_and_never_as_html(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    page = b"<html><body><script>alert(1)</script><p>Lighthouse</p></body></html>"
    for name, data, kind in (("notes.md", b"# Notes\nhello", "text/plain; charset=utf-8"),
                             ("page.html", page, "text/plain; charset=utf-8")):  # fmt: skip
        sent = await upload(api, headers, name, data)
        assert sent.status_code == 201, sent.text
        file_id = sent.json()["data"]["file"]["id"]
        link = await api.get(f"/v1/files/{file_id}/download?inline=true", headers=headers)
        assert link.status_code == 200, link.text
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(link.json()["data"]["url"])
        assert fetched.status_code == 200 and fetched.content == data
        assert fetched.headers["content-disposition"].startswith("inline;"), name
        assert fetched.headers["content-type"] == kind, name
        saved = await api.get(f"/v1/files/{file_id}/download", headers=headers)
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(saved.json()["data"]["url"])
        assert fetched.headers["content-disposition"].startswith("attachment;"), name
