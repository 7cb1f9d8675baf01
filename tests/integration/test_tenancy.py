"""Tenant isolation on every route of template.yaml.

Each route that names an object (`{id}` in its path) needs an entry in OWNED (how user A makes
a real object for it) or ADMIN_ONLY; a route without one fails `test_every_id_route_has_a_
tenancy_fixture`, so each new resource extends this file. For an owned object, A gets 2xx and
user B gets 404, never 403 (no existence leak), on read, update and delete; list routes in
LISTS never show B what A owns. Every route that needs a user refuses anonymous calls.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from shared.platform.runtime.routes import Access
from shared.platform.template import load_template
from tests.integration.accountkit import export_row
from tests.integration.adapterkit import job_row, persona_of
from tests.integration.authkit import PASSWORD, bearer, sign_up
from tests.integration.prefkit import seeded_feedback
from tests.integration.ragkit import chunk_row
from tests.integration.voicekit import clip_row

pytestmark = pytest.mark.integration

Maker = Callable[[Any, dict], Awaitable[str]]  # (client, user A) -> the id of A's object


async def _session_of(api, a: dict) -> str:
    login = {"email": a["user"]["email"], "password": PASSWORD}
    other = await api.post("/v1/auth/login", json=login, headers={"User-Agent": "tablet"})
    assert other.status_code == 200
    items = (await api.get("/v1/auth/sessions", headers=bearer(a["access_token"]))).json()
    return next(i["id"] for i in items["data"]["items"] if i["user_agent"] == "tablet")


async def _conversation_of(api, a: dict) -> str:
    made = await api.post("/v1/conversations", headers=bearer(a["access_token"]), json={})
    assert made.status_code == 201
    return made.json()["data"]["id"]


async def _artifact_of(api, a: dict) -> str:
    schema = {"kind": "tool.spec", "name": "tenancy.probe_v1", "input_schema": {"type": "object"},
              "output_schema": {"type": "object"}}  # fmt: skip
    body = {"name": f"probe-{uuid.uuid4().hex[:8]}", "schema": schema}
    made = await api.post("/v1/artifacts", headers=bearer(a["access_token"]), json=body)
    assert made.status_code == 201, made.text
    return made.json()["data"]["id"]


async def _patch_of(api, a: dict) -> str:
    artifact_id = await _artifact_of(api, a)
    body = {"artifact_id": artifact_id, "justification": "tenancy probe",
            "patch": [{"op": "add", "path": "/description", "value": "probed"}]}  # fmt: skip
    made = await api.post("/v1/config/patches", headers=bearer(a["access_token"]), json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


async def _file_of(api, a: dict) -> str:
    made = await api.post("/v1/files/upload", headers=bearer(a["access_token"]),
                          files={"file": ("probe.md", uuid.uuid4().hex.encode())})  # fmt: skip
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["file"]["id"])


async def _presigned_file_of(api, a: dict) -> str:
    body = uuid.uuid4().hex.encode()
    grant = await api.post("/v1/files/presign", headers=bearer(a["access_token"]),
                           json={"filename": "probe.txt", "size_bytes": len(body)})  # fmt: skip
    assert grant.status_code == 201, grant.text
    data = grant.json()["data"]
    async with httpx.AsyncClient() as plain:
        sent = await plain.post(data["url"], data=data["fields"], files={"file": body})
    assert sent.status_code < 300, sent.text
    return str(data["file"]["id"])


async def _context_of(api, a: dict) -> str:
    made = await api.post("/v1/contexts", headers=bearer(a["access_token"]), json={"name": "c"})
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


async def _context_and_file_body(api, a: dict) -> tuple[str, dict, dict]:
    return await _context_of(api, a), {}, {"file_ids": [await _file_of(api, a)]}


async def _context_with_file(api, a: dict) -> tuple[str, dict, None]:
    context_id, file_id = await _context_of(api, a), await _file_of(api, a)
    attached = await api.post(f"/v1/contexts/{context_id}/files", json={"file_ids": [file_id]},
                              headers=bearer(a["access_token"]))  # fmt: skip
    assert attached.status_code == 200, attached.text
    return context_id, {"{file_id}": file_id}, None


async def _chunk_of(api, a: dict) -> str:
    context_id, file_id = await _context_of(api, a), await _file_of(api, a)
    return await chunk_row(context_id, file_id, "A probe passage.")


async def _preference_of(api, a: dict) -> str:
    event_id, _ = await seeded_feedback(a["user"]["id"], signal="like", notes=None)
    return str(event_id)


async def _instruction_of(api, a: dict) -> str:
    _, instruction_id = await seeded_feedback(a["user"]["id"], signal="never", notes="emoji")
    assert instruction_id is not None
    return instruction_id


async def _adapter_of(api, a: dict) -> str:
    return await persona_of(a["user"]["id"])


async def _voice_clip_of(api, a: dict) -> str:
    return await clip_row(a["user"]["id"])


async def _export_of(api, a: dict) -> str:
    return await export_row(a["user"]["id"])  # ready, so its download answers too


async def _job_of(api, a: dict) -> str:
    user = a["user"]["id"]
    return await job_row(user, await persona_of(user), status="succeeded", loss=0.5)


# (method, path) of a route naming an object -> how A creates one, and the body for writes.
# A maker may return (id, other path parameters, body) when those depend on the object.
# Deletes come last, so reads and updates still find the object.
OWNED: dict[tuple[str, str], tuple[Maker, dict | None]] = {
    ("DELETE", "/v1/auth/sessions/{id}"): (_session_of, None),
    ("GET", "/v1/conversations/{id}"): (_conversation_of, None),
    ("PATCH", "/v1/conversations/{id}"): (_conversation_of, {"title": "renamed"}),
    ("GET", "/v1/conversations/{id}/messages"): (_conversation_of, None),
    ("DELETE", "/v1/conversations/{id}"): (_conversation_of, None),
    ("GET", "/v1/artifacts/{id}"): (_artifact_of, None),
    ("PATCH", "/v1/artifacts/{id}"): (_artifact_of, {"description": "changed"}),
    ("GET", "/v1/artifacts/{id}/versions"): (_artifact_of, None),
    ("GET", "/v1/artifacts/{id}/versions/{version}"): (_artifact_of, None),
    ("DELETE", "/v1/artifacts/{id}"): (_artifact_of, None),
    ("GET", "/v1/files/{id}"): (_file_of, None),
    ("GET", "/v1/files/{id}/download"): (_file_of, None),
    ("POST", "/v1/files/{id}/complete"): (_presigned_file_of, {}),
    ("GET", "/v1/contexts/{id}"): (_context_of, None),
    ("PATCH", "/v1/contexts/{id}"): (_context_of, {"description": "changed"}),
    ("GET", "/v1/contexts/{id}/chunks"): (_context_of, None),
    ("GET", "/v1/contexts/{id}/files"): (_context_of, None),
    ("GET", "/v1/contexts/{id}/stats"): (_context_of, None),
    ("GET", "/v1/chunks/{id}"): (_chunk_of, None),
    ("POST", "/v1/contexts/{id}/search"): (_context_of, {"query": "probe", "mode": "text"}),
    ("POST", "/v1/contexts/{id}/files"): (_context_and_file_body, None),
    ("DELETE", "/v1/contexts/{id}/files/{file_id}"): (_context_with_file, None),
    ("PATCH", "/v1/me/personalization/instructions/{id}"): (_instruction_of, {"text": "x"}),
    ("DELETE", "/v1/me/personalization/instructions/{id}"): (_instruction_of, None),
    ("DELETE", "/v1/preferences/{id}"): (_preference_of, None),
    ("GET", "/v1/adapters/{id}"): (_adapter_of, None),
    ("GET", "/v1/training/jobs/{id}"): (_job_of, None),
    ("GET", "/v1/config/patches/{id}"): (_patch_of, None),
    ("GET", "/v1/config/patches/{id}/preview"): (_patch_of, None),
    ("GET", "/v1/voice/clips/{id}/audio"): (_voice_clip_of, None),
    ("DELETE", "/v1/voice/clips/{id}"): (_voice_clip_of, None),
    ("DELETE", "/v1/files/{id}"): (_file_of, None),
    ("DELETE", "/v1/contexts/{id}"): (_context_of, None),
    ("GET", "/v1/me/exports/{id}"): (_export_of, None),
    ("GET", "/v1/me/exports/{id}/download"): (_export_of, None),
}
# Path parameters besides the object's id, as the object A just made has them.
OTHER_PARAMS = {"{version}": "1"}
# Routes on any user's object that only admins reach (B, a plain user, gets 403).
ADMIN_ONLY = {
    ("PATCH", "/v1/admin/users/{id}"): {"role": "user"},
    ("GET", "/v1/admin/adapters/{id}"): None,
    ("POST", "/v1/admin/adapters/{id}/rollback"): {"version": 1},
    ("POST", "/v1/admin/adapters/{id}/versions/{version}/approve"): None,
    ("DELETE", "/v1/admin/adapters/{id}/versions/{version}"): None,
    ("POST", "/v1/config/patches/{id}/decide"): {"decision": "reject", "reason": "probe"},
    ("POST", "/v1/config/patches/{id}/apply"): None,
    ("GET", "/v1/admin/architect/runs/{id}"): None,
    ("DELETE", "/v1/admin/users/{id}"): None,
}
# List routes: (path, how to read the ids out of `data`) and the OWNED route whose objects
# they list.
LISTS = {
    "/v1/auth/sessions": (lambda data: [i["id"] for i in data["items"]],
                          ("DELETE", "/v1/auth/sessions/{id}")),
    "/v1/conversations": (lambda data: [i["id"] for i in data["items"]],
                          ("GET", "/v1/conversations/{id}")),
    "/v1/artifacts": (lambda data: [i["id"] for i in data["items"]],
                      ("GET", "/v1/artifacts/{id}")),
    "/v1/files": (lambda data: [i["id"] for i in data["items"]], ("GET", "/v1/files/{id}")),
    "/v1/contexts": (lambda data: [i["id"] for i in data["items"]],
                     ("GET", "/v1/contexts/{id}")),
    "/v1/preferences": (lambda data: [str(i["id"]) for i in data["items"]],
                        ("DELETE", "/v1/preferences/{id}")),
    "/v1/adapters": (lambda data: [i["id"] for i in data["items"]],
                     ("GET", "/v1/adapters/{id}")),
    "/v1/training/jobs": (lambda data: [i["id"] for i in data["items"]],
                          ("GET", "/v1/training/jobs/{id}")),
    "/v1/config/patches": (lambda data: [str(i["id"]) for i in data["items"]],
                           ("GET", "/v1/config/patches/{id}")),
    "/v1/me/exports": (lambda data: [i["id"] for i in data["items"]],
                       ("GET", "/v1/me/exports/{id}")),
}  # fmt: skip

NOT_LISTS = {"/v1/files/limits"}  # ends in "s" but lists nothing (the caller's plan limits)
# Lists of objects no route names by id (so no OWNED maker); their isolation is tested where
# the objects are made: test_clusters.py (clusters come from a cluster run, not a POST).
NOT_LISTS |= {"/v1/clusters"}
NOT_LISTS |= {"/v1/voice/voices", "/v1/me/settings"}  # the service's voices; one settings object


def _routes(settings) -> list[tuple[str, str, Access]]:
    template = load_template(settings.template_path, settings)
    found = []
    for spec in template.functions.values():
        if not spec.http:
            continue
        table = importlib.import_module(spec.module).ROUTES
        for route in table.routes:
            found.append((route.method, route.path, route.access))
    return found


def test_every_id_route_has_a_tenancy_fixture(settings) -> None:
    # Public routes name no user's object (`/v1/auth/oauth/{provider}/…` names the provider).
    id_routes = {(m, p) for m, p, a in _routes(settings) if "{" in p and a is not Access.PUBLIC}
    missing = id_routes - set(OWNED) - set(ADMIN_ONLY)
    assert not missing, f"routes without a tenancy fixture (add them to OWNED): {missing}"
    # Lists under an object ({id}/messages) are covered by that object's 404 above.
    assert (
        set(LISTS)
        >= {
            p
            for m, p, a in _routes(settings)
            if m == "GET" and p.endswith("s") and "{" not in p and a is Access.USER
        }
        - NOT_LISTS
    ), "every user list route needs a LISTS entry"


async def test_another_users_object_is_not_found(api, settings) -> None:
    a, b = await sign_up(api), await sign_up(api)
    for (method, path), (make, body) in OWNED.items():
        made = await make(api, a)
        object_id, params, made_body = made if isinstance(made, tuple) else (made, {}, None)
        body = made_body if made_body is not None else body
        url = path.replace("{id}", object_id)
        for param, value in {**OTHER_PARAMS, **params}.items():
            url = url.replace(param, value)
        for path_list, (ids_of, owned_route) in LISTS.items():
            if owned_route != (method, path):
                continue
            seen_by_b = (await api.get(path_list, headers=bearer(b["access_token"]))).json()
            assert object_id not in ids_of(seen_by_b["data"]), path_list
            seen_by_a = (await api.get(path_list, headers=bearer(a["access_token"]))).json()
            assert object_id in ids_of(seen_by_a["data"]), path_list
        as_b = await api.request(method, url, headers=bearer(b["access_token"]), json=body)
        assert as_b.status_code == 404, (method, path, as_b.text)
        assert as_b.json()["error"]["code"] == "not_found"
        as_a = await api.request(method, url, headers=bearer(a["access_token"]), json=body)
        assert 200 <= as_a.status_code < 300, (method, path, as_a.text)


async def test_admin_routes_refuse_plain_users(api, settings) -> None:
    a, b = await sign_up(api), await sign_up(api)
    for method, path, access in _routes(settings):
        if access is not Access.ADMIN:
            continue
        url = path.replace("{id}", a["user"]["id"])
        body = ADMIN_ONLY.get((method, path))
        response = await api.request(method, url, headers=bearer(b["access_token"]), json=body)
        assert response.status_code == 403, (method, path)


async def test_every_protected_route_refuses_anonymous_and_spoofed_callers(api, settings) -> None:
    a = await sign_up(api)
    spoofed = {"X-User-Id": a["user"]["id"], "X-User-Role": "admin", "X-Forwarded-User": "a"}
    for method, path, access in _routes(settings):
        if access not in (Access.USER, Access.ADMIN):
            continue
        url = path.replace("{id}", a["user"]["id"])
        for headers in ({}, spoofed):
            response = await api.request(method, url, headers=headers)
            assert response.status_code == 401, (method, path, headers)
