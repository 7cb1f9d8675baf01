"""`/v1/openapi.json` is a file built from template.yaml and the route tables (the kernel does
not import functions to build it): it must be what they make now."""

from __future__ import annotations

import ast
import json

from functions.health.main import OPENAPI_FILE
from infra import openapi
from shared.platform.settings import REPO_ROOT
from shared.platform.template import load_template
from tests.helpers import write_template_with_fixtures


def test_the_served_document_is_current() -> None:
    assert OPENAPI_FILE.read_text() == openapi.current(), (
        f"{OPENAPI_FILE.relative_to(REPO_ROOT)} is stale: run `make openapi`"
    )


def test_the_document_follows_the_template(tmp_path, settings) -> None:
    """A route the template adds (the test-only SSE function) is in the document built from
    it, so a stale file is caught by the test above, not only a changed model."""
    fixtures = write_template_with_fixtures(REPO_ROOT / "template.yaml", tmp_path / "t.yaml")
    main_paths = set(json.loads(OPENAPI_FILE.read_text())["paths"])
    with_fixture = set(openapi.document(load_template(fixtures, settings))["paths"])
    assert with_fixture - main_paths == {"/v1/fixture/stream"}


def test_the_openapi_builder_imports_no_function() -> None:
    tree = ast.parse((REPO_ROOT / "shared" / "platform" / "runtime" / "openapi.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("functions", "importlib")}


def test_two_models_of_one_name_are_refused() -> None:
    """Two functions' `VersionOut` once shared one component: one route was documented (and
    the web app typed) with the other's shape."""
    import pydantic
    import pytest

    from shared.platform.runtime.openapi import build_openapi
    from shared.platform.runtime.routes import Route, RouteTable

    def model(field: str) -> type[pydantic.BaseModel]:
        return pydantic.create_model("VersionOut", **{field: (int, ...)})

    async def endpoint(call: object, *, services: object) -> None:
        return None

    def table(name: str, path: str, field: str) -> RouteTable:
        return RouteTable(name, [Route("GET", path, endpoint, "x", response_model=model(field))])

    same = [table("a", "/v1/a", "version"), table("b", "/v1/b", "version")]
    assert "VersionOut" in build_openapi(same, title="t", version="1")["components"]["schemas"]
    clash = [table("a", "/v1/a", "version"), table("b", "/v1/b", "number")]
    with pytest.raises(ValueError, match="'VersionOut' of GET /v1/b"):
        build_openapi(clash, title="t", version="1")
