"""Reads `template.yaml` (AWS SAM), the single source of truth for functions, routes, queues,
buckets, schedules, the WebSocket API and the static site's guards, into plain dataclasses the
local gateway, dispatcher and stack use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from shared.platform.settings import REPO_ROOT, Settings


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
    # Metadata.LocalHost: the local host of its own this function runs in (None: the shared
    # internal host), a process that serves it alone (`python -m infra.gateway --internal
    # --only <LogicalId>`) on the port FUNCTIONS_HOST_PORTS gives that name.
    local_host: str | None = None

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
class WebSocketApi:
    """An `AWS::ApiGatewayV2::Api` of ProtocolType WEBSOCKET: each route key ($connect,
    $default, $disconnect...) and the function its AWS_PROXY integration invokes."""

    logical_id: str
    local_path: str  # Metadata.LocalPath: where the local gateway accepts the socket
    route_selection_expression: str
    stage: str = "local"
    routes: tuple[tuple[str, str], ...] = ()  # (route key, function logical id)

    def function_for(self, route_key: str) -> str | None:
        return dict(self.routes).get(route_key)


@dataclass(frozen=True)
class StaticGuard:
    """A part of the static site only some callers may fetch (`admin` or `user`)."""

    path_prefix: str
    access: str

    def covers(self, path: str) -> bool:
        prefix = self.path_prefix.rstrip("/")
        return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class StaticSite:
    directory: Path  # relative to the code (CodeUri: .) in the template
    guards: tuple[StaticGuard, ...] = ()

    def guard_for(self, path: str) -> StaticGuard | None:
        return next((guard for guard in self.guards if guard.covers(path)), None)


@dataclass(frozen=True)
class Template:
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)
    websockets: dict[str, WebSocketApi] = field(default_factory=dict)
    static_site: StaticSite | None = None

    def queue_name(self, logical_id: str) -> str:
        return self.queues[logical_id].name

    def socket_functions(self) -> set[str]:
        """Logical ids of the functions a WebSocket API invokes."""
        return {function for api in self.websockets.values() for _, function in api.routes}


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
    props, metadata = resource.get("Properties", {}), resource.get("Metadata", {})
    package = metadata.get("Package")
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
        local_host=metadata.get("LocalHost"),
    )


_SUB_REF = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.Arn)?\}")


def _sub_ref(value: Any, where: str) -> str:
    """The one resource a `!Sub` names (`${X}` or `${X.Arn}`; `${AWS::Region}` and the other
    pseudo-parameters do not match)."""
    text = value.get("Fn::Sub") if isinstance(value, dict) else None
    names = _SUB_REF.findall(text or "")
    if len(names) != 1:
        raise ValueError(f"{where}: expected a !Sub naming one resource, got {value!r}")
    return names[0]


def _websockets(resources: dict[str, Any]) -> dict[str, WebSocketApi]:
    apis: dict[str, WebSocketApi] = {}
    for logical_id, resource in resources.items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::ApiGatewayV2::Api" and props.get("ProtocolType") == "WEBSOCKET":
            path = resource.get("Metadata", {}).get("LocalPath")
            if not path:
                raise ValueError(f"{logical_id}: Metadata.LocalPath names the local socket path")
            apis[logical_id] = WebSocketApi(logical_id, path, props["RouteSelectionExpression"])
    routes: dict[str, list[tuple[str, str]]] = {api: [] for api in apis}
    stages: dict[str, str] = {}
    for logical_id, resource in resources.items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind not in ("AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage"):
            continue
        api = _ref_logical_id(props["ApiId"])
        if api not in apis:
            continue
        if kind == "AWS::ApiGatewayV2::Stage":
            stages[api] = str(props["StageName"])
            continue
        integration = resources[_sub_ref(props.get("Target"), logical_id)]
        uri = integration.get("Properties", {}).get("IntegrationUri")
        routes[api].append((str(props["RouteKey"]), _sub_ref(uri, logical_id)))
    return {
        api_id: replace(api, stage=stages.get(api_id, api.stage), routes=tuple(routes[api_id]))
        for api_id, api in apis.items()
    }


def _static_site(raw: dict[str, Any]) -> StaticSite | None:
    site = (raw.get("Metadata") or {}).get("StaticSite")
    if not site:
        return None
    guards = []
    for guard in site.get("Guards", []):
        if guard["Access"] not in ("admin", "user"):
            raise ValueError(f"StaticSite guard {guard!r}: Access is admin or user")
        guards.append(StaticGuard(guard["PathPrefix"], guard["Access"]))
    return StaticSite(REPO_ROOT / site["Directory"], tuple(guards))


def load_template(path: Path, settings: Settings) -> Template:
    raw = load_raw(path)
    default_timeout = int(raw.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    template = Template(
        websockets=_websockets(raw.get("Resources", {})), static_site=_static_site(raw)
    )
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
