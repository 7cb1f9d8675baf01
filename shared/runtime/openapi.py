"""`/v1/openapi.json`, generated from the route tables of the template's HTTP functions."""

from __future__ import annotations

import importlib
import re
from typing import Any

from shared.runtime.routes import Access, Route, RouteTable
from shared.runtime.template import Template

_ENVELOPE_ERROR = {
    "type": "object",
    "required": ["status", "error", "request_id"],
    "properties": {
        "status": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        },
        "request_id": {"type": "string"},
    },
}


def route_tables(template: Template) -> list[RouteTable]:
    tables = []
    for spec in template.functions.values():
        if spec.http:
            module = importlib.import_module(spec.module)
            tables.append(module.ROUTES)
    return tables


def _operation(route: Route, defs: dict[str, Any]) -> dict[str, Any]:
    def ref(model: Any) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    data = ref(route.response_model) if route.response_model else {}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.method.lower()
        + "_"
        + re.sub(r"[^A-Za-z0-9]+", "_", route.path).strip("_"),
        "responses": {
            str(route.status): {
                "description": "ok",
                "content": {
                    "text/event-stream" if route.streaming else "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "status": {"const": "ok"},
                                "data": data,
                                "request_id": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "default": {
                "description": "error envelope",
                "content": {"application/json": {"schema": _ENVELOPE_ERROR}},
            },
        },
    }
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in route.pattern.groupindex
    ]
    if route.request_model and route.method in ("GET", "DELETE"):
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
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(route.request_model)}},
        }
    if params:
        operation["parameters"] = params
    if route.access in (Access.USER, Access.ADMIN):
        operation["security"] = [{"bearerAuth": []}]
    return operation


def build_openapi(template: Template, *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    defs: dict[str, Any] = {}
    for table in route_tables(template):
        for route in table.routes:
            if route.access is Access.INTERNAL:
                continue
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
