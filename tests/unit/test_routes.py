"""Route tables: matching, validation, the envelope and request ids (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field
from starlette.testclient import TestClient

from shared.platform.errors import Conflict
from shared.platform.runtime.asgi import FunctionApp
from shared.platform.runtime.routes import (
    MAX_JSON_BODY_BYTES,
    Call,
    Route,
    RouteTable,
    compile_path,
)


class ThingCreate(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    count: int = 1


class ThingPublic(BaseModel):
    id: str
    name: str


SERVICES = object()  # the endpoints here need none


async def create(call: Call[Any], *, services: object) -> dict[str, Any]:
    if call.body.name == "taken":
        raise Conflict("name taken", details={"reason": "duplicate"})
    return {"id": "t1", "name": call.body.name, "secret_column": "never returned"}


async def get_one(call: Call[Any], *, services: object) -> dict[str, Any]:
    return {"id": call.path_params["thing_id"], "name": "x"}


async def boom(call: Call[Any], *, services: object) -> None:
    raise RuntimeError("database password is hunter2")


TABLE = RouteTable(
    "things",
    [
        Route(
            "POST",
            "/v1/things",
            create,
            "create",
            request_model=ThingCreate,
            response_model=ThingPublic,
            status=201,
        ),
        Route("GET", "/v1/things/{thing_id}", get_one, "get", response_model=ThingPublic),
        Route("GET", "/v1/boom", boom, "fails"),
    ],
)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(FunctionApp(TABLE, services=SERVICES))


def test_compile_path_extracts_one_segment_per_parameter() -> None:
    pattern = compile_path("/v1/things/{thing_id}/versions")
    assert pattern.match("/v1/things/abc/versions").groupdict() == {"thing_id": "abc"}
    assert pattern.match("/v1/things/a/b/versions") is None
    assert compile_path("/v1/a.b").match("/v1/aXb") is None  # literal parts are escaped


def test_created_resource_is_serialised_through_the_response_model(client: TestClient) -> None:
    response = client.post("/v1/things", json={"name": "lamp"})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "ok"
    assert body["data"] == {"id": "t1", "name": "lamp"}  # no extra columns leak
    assert body["request_id"] == response.headers["x-request-id"]


def test_validation_error_lists_each_problem(client: TestClient) -> None:
    response = client.post("/v1/things", json={"name": "", "count": "many"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {tuple(d["loc"]) for d in error["details"]} == {("name",), ("count",)}


def test_malformed_json_is_a_validation_error(client: TestClient) -> None:
    response = client.post(
        "/v1/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_oversized_body_is_refused(client: TestClient) -> None:
    response = client.post("/v1/things", content=b"x" * (MAX_JSON_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_app_errors_map_to_their_status_and_details(client: TestClient) -> None:
    response = client.post("/v1/things", json={"name": "taken"})
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "conflict",
        "message": "name taken",
        "details": {"reason": "duplicate"},
    }


def test_unexpected_errors_hide_their_message(client: TestClient) -> None:
    response = client.get("/v1/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "hunter2" not in response.text


def test_path_parameters_and_unknown_routes(client: TestClient) -> None:
    assert client.get("/v1/things/42").json()["data"]["id"] == "42"
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = client.delete("/v1/things/42")
    assert wrong_method.status_code == 405


def test_a_safe_caller_request_id_is_kept_and_an_unsafe_one_replaced(client: TestClient) -> None:
    kept = client.get("/v1/things/1", headers={"x-request-id": "req-12345678"})
    assert kept.json()["request_id"] == "req-12345678"
    replaced = client.get("/v1/things/1", headers={"x-request-id": "bad id\nwith newline"})
    assert replaced.json()["request_id"] != "bad id\nwith newline"
    assert len(replaced.json()["request_id"]) == 36
