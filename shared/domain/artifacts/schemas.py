"""The JSON Schemas (Draft 2020-12) of the artifact kinds.

One schema per `schema.kind`. They are strict where a typo would otherwise pass silently
(`additionalProperties: false`, bounded strings and arrays); what a schema cannot say (ids that
must name other nodes or artifacts, expressions that must compile) is checked by
`shared.domain.artifacts.checks`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"

NODE_ID = r"^[A-Za-z0-9_.-]{1,64}$"
TOOL_NAME = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

_node_id: dict[str, Any] = {"type": "string", "pattern": NODE_ID}
_text = {"type": "string", "maxLength": 2000}
_expression = {"type": "string", "minLength": 1, "maxLength": 1000}
_name = {"type": "string", "minLength": 1, "maxLength": 200}


def _kind(kind: str) -> dict[str, Any]:
    return {"const": kind}


def _int(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _when(field: str, value: str, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {field: {"const": value}}, "required": [field]}, "then": then}


def _schema(kind: str, title: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DRAFT, "$id": f"urn:acs:artifact:{kind}", "title": title, **body}


WORKFLOW_CHAT = _schema("workflow.chat", "A chat workflow graph", {
    "type": "object",
    "required": ["kind", "entrypoint", "nodes"],
    "additionalProperties": False,
    "properties": {
        "kind": _kind("workflow.chat"),
        "description": _text,
        "entrypoint": _node_id,
        "timeout_ms": _int(1000, 600_000),
        "node_timeout_ms": _int(1, 60_000),
        "max_retries": _int(0, 3),
        "backoff_ms": _int(0, 60_000),
        "nodes": {
            "type": "array", "minItems": 1, "maxItems": 64, "items": {"$ref": "#/$defs/node"},
        },
    },
    "$defs": {
        "node": {
            "type": "object",
            "required": ["id", "type"],
            "additionalProperties": False,
            "properties": {
                "id": _node_id,
                "type": {"enum": ["tool_call", "switch", "parallel", "end"]},
                "description": _text,
                "tool": {"type": "string", "pattern": TOOL_NAME, "maxLength": 128},
                "inputs": {"type": "object", "maxProperties": 64},
                "outputs": {
                    "type": "array", "maxItems": 64, "uniqueItems": True,
                    "items": {"type": "string", "pattern": IDENT},
                },
                "branches": {
                    "type": "array", "minItems": 1, "maxItems": 32,
                    "items": {
                        "type": "object",
                        "required": ["when", "next"],
                        "additionalProperties": False,
                        "properties": {"when": _expression, "next": _node_id},
                    },
                },
                "children": {
                    "type": "array", "minItems": 1, "maxItems": 16, "uniqueItems": True,
                    "items": _node_id,
                },
                "next": _node_id,
                "on_error": _node_id,
                "timeout_ms": _int(1, 60_000),
                "max_retries": _int(0, 3),
                "backoff_ms": _int(0, 60_000),
            },
            "allOf": [
                _when("type", "tool_call", {"required": ["tool"]}),
                _when("type", "switch", {"required": ["branches"]}),
                _when("type", "parallel", {"required": ["children"]}),
            ],
        },
    },
})  # fmt: skip

ACTIONS = (
    "activate_adapter_by_id",
    "activate_adapter_by_type",
    "activate_adapter_by_cluster",
    "scale_adapter_weight",
    "deactivate_adapter",
    "deactivate_all_adapters",
)
_one_adapter = {"anyOf": [{"required": ["adapter_id"]}, {"required": ["adapter_type"]}]}

POLICY_ROUTING = _schema("policy.routing", "An adapter routing policy", {
    "type": "object",
    "required": ["kind", "rules"],
    "additionalProperties": False,
    "properties": {
        "kind": _kind("policy.routing"),
        "name": _name,
        "description": _text,
        "max_active_adapters": _int(1, 3),
        "weight_floor": {"type": "number", "minimum": 0, "maximum": 1},
        "rules": {"type": "array", "maxItems": 64, "items": {"$ref": "#/$defs/rule"}},
    },
    "$defs": {
        "rule": {
            "type": "object",
            "required": ["id", "when", "action"],
            "additionalProperties": False,
            "properties": {
                "id": _node_id,
                "description": _text,
                "when": _expression,
                "action": {"$ref": "#/$defs/action"},
            },
        },
        "action": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": list(ACTIONS)},
                "adapter_id": {"type": "string", "pattern": f"^current$|{UUID}"},
                "adapter_type": {"type": "string", "pattern": IDENT},
                "cluster_id": {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,64}$"},
                "weight": {"anyOf": [
                    {"type": "number", "minimum": 0, "maximum": 1}, {"const": "similarity"},
                ]},
                "factor": {"type": "number", "minimum": 0, "maximum": 10},
                "overwrite": {"type": "boolean"},
            },
            "allOf": [
                _when("type", "activate_adapter_by_id", {"required": ["adapter_id"]}),
                _when("type", "activate_adapter_by_type", {"required": ["adapter_type"]}),
                _when("type", "activate_adapter_by_cluster", {"required": ["cluster_id"]}),
                _when("type", "scale_adapter_weight", {"required": ["factor"], **_one_adapter}),
                _when("type", "deactivate_adapter", _one_adapter),
            ],
        },
    },
})  # fmt: skip

TOOL_SPEC = _schema("tool.spec", "A declarative tool definition", {
    "type": "object",
    "required": ["kind", "name", "input_schema", "output_schema"],
    "additionalProperties": False,
    "properties": {
        "kind": _kind("tool.spec"),
        "name": {"type": "string", "pattern": TOOL_NAME, "maxLength": 128},
        "description": _text,
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "timeout_ms": _int(1, 60_000),
        "max_retries": _int(0, 3),
        "backoff_ms": _int(0, 60_000),
        "privileged": {"type": "boolean"},
        "content_type": {"type": "string", "minLength": 1, "maxLength": 100},
    },
})  # fmt: skip

_nullable_text = {"type": ["string", "null"], "maxLength": 1000}

ADAPTER_LORA = _schema("adapter.lora", "LoRA adapter metadata", {
    "type": "object",
    "required": ["kind"],
    "additionalProperties": False,
    "properties": {
        "kind": _kind("adapter.lora"),
        "mode": {"enum": ["local", "remote", "prompt", "hybrid"]},
        "backend": {"type": "string", "maxLength": 64},
        "provider": {"type": "string", "maxLength": 64},
        "format": {"type": "string", "maxLength": 32},
        "scope": {"type": "string", "maxLength": 64},
        "user_id": {"type": ["string", "null"], "maxLength": 64},
        "base_model": {"type": "string", "maxLength": 200},
        "adapter_type": {"type": "string", "pattern": IDENT},
        "rank": _int(1, 256),
        "alpha": {"type": "number", "exclusiveMinimum": 0},
        "target_modules": {
            "type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 64},
        },
        "layers": {"type": "array", "maxItems": 256, "items": _int(0, 1023)},
        "matrices": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 64}},
        "fs_dir": {"type": ["string", "null"], "maxLength": 1024},
        "checksum": {"type": ["string", "null"], "maxLength": 128},
        "version": _int(1, 1_000_000),
        "current_version": _int(1, 1_000_000),
        "cluster_id": {"type": ["string", "null"], "maxLength": 64},
        # SPEC §7.4: a disabled adapter is never routed to (pruned, or merged into another).
        "status": {"enum": ["active", "disabled"]},
        "merged_into": {"type": ["string", "null"], "maxLength": 64},
        # What a trained version records (functions/train, through the registry's
        # `extra_schema`): its job, whether it was promoted, its metrics and training config.
        "job_id": {"type": ["string", "null"], "maxLength": 64},
        "promoted": {"type": "boolean"},
        "metrics": {"type": "object"},
        "training_config": {"type": "object"},
        "remote_model_id": _nullable_text,
        "remote_adapter_id": _nullable_text,
        "prompt_instructions": {"type": ["string", "null"], "maxLength": 20_000},
        "weight": {"type": "number", "minimum": 0, "maximum": 1},
        "applicability": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "natural_language": {"type": ["string", "null"], "maxLength": 2000},
                "embedding_centroid": {
                    "type": ["array", "null"], "maxItems": 4096, "items": {"type": "number"},
                },
            },
        },
    },
})  # fmt: skip

CONTEXT_KNOWLEDGE = _schema("context.knowledge", "A knowledge (RAG) context", {
    "type": "object",
    "required": ["kind", "name"],
    "additionalProperties": False,
    "properties": {
        "kind": _kind("context.knowledge"),
        "name": _name,
        "description": _text,
        "chunk_tokens": {**_int(64, 4000), "default": 400},
        "chunk_overlap": {**_int(0, 1000), "default": 0},
        "pii_scrub": {"type": "boolean", "default": False},
        "file_ids": {
            "type": "array", "maxItems": 1000, "uniqueItems": True,
            "items": {"type": "string", "pattern": UUID},
        },
    },
})  # fmt: skip

MEMORY_SUMMARY = _schema("memory.summary", "A long-term conversation summary", {
    "type": "object",
    "required": ["kind", "conversation_id", "summary", "covers_until_seq"],
    "additionalProperties": False,
    "properties": {
        "kind": _kind("memory.summary"),
        "conversation_id": {"type": "string", "pattern": UUID},
        "summary": {"type": "string", "maxLength": 20_000},
        "covers_until_seq": _int(0, 2**31 - 1),
        "token_count": _int(0, 2**31 - 1),
    },
})  # fmt: skip

SCHEMAS: MappingProxyType[str, dict[str, Any]] = MappingProxyType(
    {
        "workflow.chat": WORKFLOW_CHAT,
        "policy.routing": POLICY_ROUTING,
        "tool.spec": TOOL_SPEC,
        "adapter.lora": ADAPTER_LORA,
        "context.knowledge": CONTEXT_KNOWLEDGE,
        "memory.summary": MEMORY_SUMMARY,
    }
)
