"""The OpenAPI document of route tables (served at `/v1/openapi.json`).

The kernel never imports functions: `infra/openapi.py` hands in the tables of the template's
HTTP functions at build time and writes the document the health function serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from shared.platform.runtime.routes import Access, Route, RouteTable

_ENVELOPE_ERROR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status", "error", "request_id"],
    "properties": {
        "status": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        },
        "request_id": {"type": "string"},
    },
}


# Every error a route can answer, all in the envelope (DESIGN.md §5). Documented per operation
# so that clients and schema checks know the statuses, not just a catch-all `default`.
ERROR_STATUSES = {
    400: "invalid input (validation_error)",
    401: "not authenticated (unauthorized, mfa_required)",
    403: "not allowed (forbidden)",
    404: "no such route or object (not_found)",
    405: "method not allowed on this path",
    409: "conflict (details.reason: busy, in_flight, duplicate...)",
    413: "payload too large",
    410: "gone (export_expired)",
    415: "unsupported media type (send application/json)",
    429: "rate limited (see Retry-After)",
    503: "a dependency is unavailable",
}


def _errors() -> dict[str, Any]:
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    return {str(code): {"description": text, "content": envelope}
            for code, text in ERROR_STATUSES.items()}  # fmt: skip


AUDIO_TYPES = ("audio/wav", "audio/ogg", "audio/webm", "audio/mpeg", "audio/mp4")


def _success(route: Route, data: dict[str, Any]) -> dict[str, Any]:
    if route.answer == "redirect":
        return {"description": "redirect", "headers": {"Location": {"schema": {"type": "string"}}}}
    if route.answer == "text":
        return {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}
    if route.answer == "audio":
        binary = {"schema": {"type": "string", "format": "binary"}}
        return {"description": "ok", "content": dict.fromkeys(AUDIO_TYPES, binary)}
    if route.answer == "document":
        document = {"application/json": {"schema": {"type": "object"}}}
        return {"description": "ok", "content": document}
    envelope = {
        "type": "object",
        "required": ["status", "data", "request_id"],
        "properties": {"status": {"const": "ok"}, "data": data, "request_id": {"type": "string"}},
    }
    content: dict[str, Any] = {"application/json": {"schema": envelope}}
    if route.streaming:  # the same route answers JSON unless the body asks for a stream
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {"description": "ok", "content": content}


def _define(defs: dict[str, Any], name: str, schema: Any, route: Route) -> None:
    """One component per name: two models of one name (in two functions) would otherwise
    overwrite each other and document one route with the other's shape."""
    if name in defs and defs[name] != schema:
        raise ValueError(
            f"OpenAPI component {name!r} of {route.method} {route.path} differs from another"
            " model of that name: give one of them a name of its own"
        )
    defs[name] = schema


def _operation(route: Route, defs: dict[str, Any]) -> dict[str, Any]:
    def ref(model: Any) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            _define(defs, name, nested, route)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    data = ref(route.response_model) if route.response_model else {}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.method.lower()
        + "_"
        + re.sub(r"[^A-Za-z0-9]+", "_", route.path).strip("_"),
        "responses": {str(route.status): _success(route, data), **_errors()},
    }
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in route.pattern.groupindex
    ]
    if route.request_model and route.method in ("GET", "DELETE") and not route.json_body:
        schema = route.request_model.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "schema": prop,
                    "required": name in schema.get("required", []),
                }
            )
    elif route.request_model:
        # A DELETE's body whose fields are all optional may be left out (it reads as `{}`).
        optional = route.json_body and not route.request_model.model_json_schema().get("required")
        operation["requestBody"] = {
            "required": not optional,
            "content": {"application/json": {"schema": ref(route.request_model)}},
        }
    elif route.form_model:
        operation["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": ref(route.form_model)}},
        }
    if params:
        operation["parameters"] = params
    if route.access in (Access.USER, Access.ADMIN):
        operation["security"] = [{"bearerAuth": []}]
    return operation


def build_openapi(tables: Iterable[RouteTable], *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    defs: dict[str, Any] = {}
    for table in tables:
        for route in table.routes:
            if route.access is Access.INTERNAL:
                continue
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**defs, "ErrorEnvelope": _ENVELOPE_ERROR},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
