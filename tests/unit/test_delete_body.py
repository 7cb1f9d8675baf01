"""A DELETE route may take its input from a JSON body (`json_body=True`; DELETE /v1/me's
password does not belong in a URL): the runtime parses it and the OpenAPI document shows it
as the request body, while other DELETEs and GETs keep their query parameters (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.testclient import TestClient

from shared.platform.runtime.asgi import FunctionApp
from shared.platform.runtime.openapi import build_openapi
from shared.platform.runtime.routes import Call, Route, RouteTable


class Proof(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, min_length=1)


class Filter(BaseModel):
    older_than: int = 0


async def echo(call: Call[Any], *, services: object) -> dict[str, Any]:
    return call.body.model_dump()


TABLE = RouteTable(
    "deleting",
    [
        Route("DELETE", "/v1/account", echo, "by body", request_model=Proof, json_body=True),
        Route("DELETE", "/v1/old", echo, "by query", request_model=Filter),
    ],
)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(FunctionApp(TABLE, services=object()))


def test_a_json_body_delete_reads_its_body_and_not_its_query(client: TestClient) -> None:
    given = client.request("DELETE", "/v1/account?password=in-the-url", json={"password": "pw"})
    assert given.status_code == 200 and given.json()["data"] == {"password": "pw"}
    # No body is `{}`; a query string is not read, so a password there is never used.
    empty = client.request("DELETE", "/v1/account?password=in-the-url")
    assert empty.status_code == 200 and empty.json()["data"] == {"password": None}
    bad = client.request("DELETE", "/v1/account", json={"password": "", "extra": 1})
    assert bad.status_code == 400
    assert {tuple(d["loc"]) for d in bad.json()["error"]["details"]} == {("password",), ("extra",)}


def test_other_deletes_still_read_the_query(client: TestClient) -> None:
    answer = client.request("DELETE", "/v1/old?older_than=5")
    assert answer.status_code == 200 and answer.json()["data"] == {"older_than": 5}


def test_the_document_shows_the_body_of_a_json_body_delete() -> None:
    paths = build_openapi([TABLE], title="t", version="1")["paths"]
    by_body = paths["/v1/account"]["delete"]
    assert "parameters" not in by_body
    assert by_body["requestBody"] == {
        "required": False,  # every field optional: the body may be left out
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Proof"}}},
    }
    by_query = paths["/v1/old"]["delete"]
    assert "requestBody" not in by_query
    assert [p["name"] for p in by_query["parameters"]] == ["older_than"]
