"""Reads `template.yaml` (AWS SAM), the single source of truth for functions, routes, queues,
buckets and schedules, into plain dataclasses the local gateway, dispatcher and stack use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.platform.settings import Settings


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags (`!Ref X` -> {"Ref": "X"})."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class HttpEvent:
    method: str
    path: str
    streaming: bool


@dataclass(frozen=True)
class SqsEvent:
    queue: str  # logical id of the queue
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class ScheduleEvent:
    name: str
    expression: str


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    package: str
    timeout_s: int
    http: tuple[HttpEvent, ...] = ()
    sqs: tuple[SqsEvent, ...] = ()
    schedules: tuple[ScheduleEvent, ...] = ()

    @property
    def module(self) -> str:
        return f"{self.package}.main"


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    visibility_timeout_s: int
    retention_s: int
    dead_letter_queue: str | None = None  # logical id
    max_receive_count: int | None = None


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    name: str
    cors_rules: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Template:
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)

    def queue_name(self, logical_id: str) -> str:
        return self.queues[logical_id].name


def load_raw(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def _name(value: Any, settings: Settings) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        raise ValueError(f"unsupported resource name {value!r}: use a string or !Sub")
    return settings.resource_name(value)


def _ref_logical_id(value: Any) -> str:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise ValueError(f"expected !GetAtt X.Arn or !Ref X, got {value!r}")


def _function(logical_id: str, resource: dict[str, Any], default_timeout: int) -> FunctionSpec:
    props = resource.get("Properties", {})
    package = resource.get("Metadata", {}).get("Package")
    if not package:
        raise ValueError(f"{logical_id}: Metadata.Package names the function's package")
    http, sqs, schedules = [], [], []
    for event_name, event in props.get("Events", {}).items():
        kind, ep = event["Type"], event.get("Properties", {})
        if kind == "Api":
            streaming = ep.get("ResponseTransferMode", "BUFFERED") == "STREAM"
            http.append(HttpEvent(ep["Method"].upper(), ep["Path"], streaming))
        elif kind == "SQS":
            sqs.append(
                SqsEvent(
                    queue=_ref_logical_id(ep["Queue"]),
                    batch_size=int(ep.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in ep.get("FunctionResponseTypes", []),
                )
            )
        elif kind == "Schedule":
            schedules.append(ScheduleEvent(event_name, ep["Schedule"]))
        else:
            raise ValueError(f"{logical_id}.{event_name}: event type {kind} is not run locally")
    return FunctionSpec(
        logical_id=logical_id,
        package=package,
        timeout_s=int(props.get("Timeout", default_timeout)),
        http=tuple(http),
        sqs=tuple(sqs),
        schedules=tuple(schedules),
    )


def load_template(path: Path, settings: Settings) -> Template:
    raw = load_raw(path)
    default_timeout = int(raw.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    template = Template()
    for logical_id, resource in raw.get("Resources", {}).items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            template.functions[logical_id] = _function(logical_id, resource, default_timeout)
        elif kind == "AWS::SQS::Queue":
            redrive = props.get("RedrivePolicy") or {}
            template.queues[logical_id] = QueueSpec(
                logical_id=logical_id,
                name=_name(props["QueueName"], settings),
                visibility_timeout_s=int(props.get("VisibilityTimeout", 30)),
                retention_s=int(props.get("MessageRetentionPeriod", 345600)),
                dead_letter_queue=_ref_logical_id(redrive["deadLetterTargetArn"])
                if redrive
                else None,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )
        elif kind == "AWS::S3::Bucket":
            cors = props.get("CorsConfiguration", {}).get("CorsRules", [])
            template.buckets[logical_id] = BucketSpec(
                logical_id, _name(props["BucketName"], settings), tuple(cors)
            )
    return template
