"""A deploy rehearsal without an AWS account: template.yaml goes through the SAM translator as
`sam deploy` would send it (code locations as S3 URIs, nested stacks opaque), then the
translated queues (with their redrive policies) and buckets are created in the local SQS and
S3 servers under a prefix of this run, and the event-source graph is checked against what the
servers hold: every work queue has its dead-letter queue, wired by the redrive policy SQS
reports, and exactly one consumer; dead-letter queues have none (they are alarmed); every
REST route invokes a function that exists, and each function's module (FUNCTION_MODULE, or
the handler of a plain one) imports and its route table serves exactly the routes the API
sends it; every schedule targets a function. What it created is deleted at the end."""

from __future__ import annotations

import importlib
import itertools
import json
import re
import uuid
from collections import defaultdict
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.aws.package import as_packaged
from infra.stack.provision import _s3_cors_rule, delete_bucket
from shared.platform.aws import s3_client, sqs_client
from shared.platform.runtime.asgi import routes_of
from shared.platform.runtime.routes import Access
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_raw

pytestmark = pytest.mark.integration

_SUB_ARN = re.compile(r"\$\{([A-Za-z0-9]+)\.Arn\}")


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _logical_id(value: Any) -> str | None:
    """The resource an intrinsic names: !GetAtt X.Arn, !Ref X or a !Sub with ${X.Arn}."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        names = _SUB_ARN.findall(text if isinstance(text, str) else text[0])
        return names[0] if len(names) == 1 else None
    return None


Gate = tuple[str, bool]  # (condition, the value of it that switches a consumer on)
_OFF = (False, "false", "STOPPED", "DISABLED")


def _gate(value: Any) -> Gate | None:
    """A `!If [Condition, on, off]` that switches something on or off (an event source
    mapping's Enabled, a pipe's DesiredState), as (condition, when it is on)."""
    if not (isinstance(value, dict) and "Fn::If" in value):
        return None
    condition, when_true, when_false = value["Fn::If"]
    if when_false in _OFF and when_true not in _OFF:
        return str(condition), True
    if when_true in _OFF and when_false not in _OFF:
        return str(condition), False
    return None


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_raw(REPO_ROOT / "template.yaml")


@pytest.fixture(scope="module")
def translated(raw, monkeypatch_module) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    packaged = as_packaged(load_raw(REPO_ROOT / "template.yaml"))
    return dict(transform(packaged, {}, _NoManagedPolicies())["Resources"])


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def deployed(translated, local_stack, settings: Settings):
    """The translated queues and buckets, created in the local servers: logical id -> the
    queue's URL and ARN, or the bucket's name."""
    prefix = f"{settings.stack_name}-rh{uuid.uuid4().hex[:6]}"
    sqs, s3 = sqs_client(settings), s3_client(settings)
    queues: dict[str, dict[str, str]] = {}
    buckets: dict[str, str] = {}
    with_cors: dict[str, int] = {}
    of_type = defaultdict(dict)
    for logical_id, resource in translated.items():
        of_type[resource["Type"]][logical_id] = resource.get("Properties") or {}
    try:
        # Dead-letter queues first: a redrive policy names its target's ARN.
        pending = dict(of_type["AWS::SQS::Queue"])
        while pending:
            ready = {
                logical_id: props
                for logical_id, props in pending.items()
                if _logical_id((props.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
                in (None, *queues)
            }
            assert ready, f"redrive policies name queues that do not exist: {sorted(pending)}"
            for logical_id, props in ready.items():
                attributes = {
                    key: str(props[key])
                    for key in ("VisibilityTimeout", "MessageRetentionPeriod")
                    if key in props
                }
                if "RedrivePolicy" in props:
                    policy = props["RedrivePolicy"]
                    target = queues[_logical_id(policy["deadLetterTargetArn"])]["arn"]  # type: ignore[index]
                    attributes["RedrivePolicy"] = json.dumps(
                        {
                            "deadLetterTargetArn": target,
                            "maxReceiveCount": policy["maxReceiveCount"],
                        }
                    )
                url = sqs.create_queue(
                    QueueName=f"{prefix}-{logical_id}"[:80], Attributes=attributes
                )["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                queues[logical_id] = {"url": url, "arn": arn["Attributes"]["QueueArn"]}
                del pending[logical_id]
        for logical_id, props in of_type["AWS::S3::Bucket"].items():
            name = f"{prefix}-{logical_id}".lower()[:63]
            s3.create_bucket(Bucket=name)
            buckets[logical_id] = name
            rules = (props.get("CorsConfiguration") or {}).get("CorsRules")
            if rules:
                try:
                    s3.put_bucket_cors(
                        Bucket=name,
                        CORSConfiguration={"CORSRules": [_s3_cors_rule(r) for r in rules]},
                    )
                    with_cors[logical_id] = len(rules)
                except ClientError:  # a store without bucket CORS (provision.py says so too)
                    pass
        yield {
            "queues": queues,
            "buckets": buckets,
            "with_cors": with_cors,
            "sqs": sqs,
            "s3": s3,
            "types": of_type,
        }
    finally:
        for queue in queues.values():
            sqs.delete_queue(QueueUrl=queue["url"])
        for name in buckets.values():
            delete_bucket(s3, name)


def test_every_work_queue_has_its_dead_letter_queue_and_one_consumer(deployed, translated) -> None:
    sqs, queues, of_type = deployed["sqs"], deployed["queues"], deployed["types"]
    by_arn = {queue["arn"]: logical_id for logical_id, queue in queues.items()}
    dead_letter_of: dict[str, str] = {}
    for logical_id, queue in queues.items():
        attributes = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["All"])
        policy = attributes["Attributes"].get("RedrivePolicy")
        if policy:
            dead_letter_of[logical_id] = by_arn[json.loads(policy)["deadLetterTargetArn"]]
    dead_letter_queues = set(dead_letter_of.values())
    work_queues = set(queues) - dead_letter_queues
    assert work_queues and dead_letter_queues
    assert work_queues == set(dead_letter_of), "a queue without a dead-letter queue"

    # queue -> its consumers, each with the condition that switches it on (None: always).
    consumers: dict[str, list[tuple[str, Gate | None]]] = defaultdict(list)
    for mapping in of_type["AWS::Lambda::EventSourceMapping"].values():
        queue, function = (
            _logical_id(mapping["EventSourceArn"]),
            _logical_id(mapping["FunctionName"]),
        )
        assert function in of_type["AWS::Lambda::Function"], f"{queue} -> {function}?"
        consumers[str(queue)].append((str(function), _gate(mapping.get("Enabled", True))))
    # A work queue handed to a nested stack (the GPU train job's pipe) is consumed there,
    # switched by the condition of the parameter that stops it. (A dead-letter queue handed
    # to one is where it sends its failures.)
    for stack_id, stack in of_type["AWS::CloudFormation::Stack"].items():
        parameters = (stack.get("Parameters") or {}).values()
        gates = [gate for value in parameters if (gate := _gate(value))]
        for value in parameters:
            if _logical_id(value) in work_queues:
                consumers[str(_logical_id(value))].append((stack_id, gates[0] if gates else None))
    for queue in work_queues:
        conditions = sorted({gate[0] for _, gate in consumers[queue] if gate})
        for values in itertools.product([True, False], repeat=len(conditions)):
            state = dict(zip(conditions, values, strict=True))
            active = [
                name for name, gate in consumers[queue] if not gate or state[gate[0]] == gate[1]
            ]
            assert len(active) == 1, f"{queue} consumers when {state}: {active}"
    for queue in dead_letter_queues:
        assert not consumers[queue], f"dead-letter queue {queue} has consumers {consumers[queue]}"


def test_buckets_exist_with_their_cors(deployed) -> None:
    s3, buckets = deployed["s3"], deployed["buckets"]
    assert "DataBucket" in buckets
    for logical_id, name in buckets.items():
        s3.head_bucket(Bucket=name)
        if logical_id in deployed["with_cors"]:
            rules = s3.get_bucket_cors(Bucket=name)["CORSRules"]
            assert len(rules) == deployed["with_cors"][logical_id]


def _api_routes(translated) -> dict[str, set[tuple[str, str]]]:
    """function logical id -> the (METHOD, path) pairs the REST APIs send it."""
    routes: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for resource in translated.values():
        if resource["Type"] != "AWS::ApiGateway::RestApi":
            continue
        for path, methods in resource["Properties"]["Body"]["paths"].items():
            for method, operation in methods.items():
                uri = operation["x-amazon-apigateway-integration"]["uri"]
                routes[str(_logical_id(uri))].add((method.upper(), path))
    return routes


def test_every_route_invokes_a_function_whose_table_serves_exactly_its_routes(
    translated, raw
) -> None:
    functions = {
        logical_id: resource
        for logical_id, resource in translated.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    api_routes = _api_routes(translated)
    assert sum(len(routes) for routes in api_routes.values()) > 50
    assert set(api_routes) <= set(functions), set(api_routes) - set(functions)
    checked = 0
    for logical_id, resource in functions.items():
        package = ((raw["Resources"].get(logical_id) or {}).get("Metadata") or {}).get("Package")
        props = resource["Properties"]
        variables = (props.get("Environment") or {}).get("Variables") or {}
        module_name = variables.get("FUNCTION_MODULE")
        if module_name is None:
            assert logical_id not in api_routes, f"{logical_id} has routes but no FUNCTION_MODULE"
            if package and props.get("Handler"):  # a plain handler (the migrations)
                module, _, attribute = props["Handler"].rpartition(".")
                assert callable(getattr(importlib.import_module(module), attribute))
            continue
        if package:
            assert module_name == f"{package}.main", logical_id
        tabled = {
            (route.method, route.path)
            for route in routes_of(module_name).routes
            if route.access is not Access.INTERNAL
        }
        assert tabled == api_routes.get(logical_id, set()), logical_id
        checked += 1
    assert checked >= 15


def test_every_schedule_targets_a_function(translated) -> None:
    functions = {k for k, r in translated.items() if r["Type"] == "AWS::Lambda::Function"}
    rules = [r for r in translated.values() if r["Type"] == "AWS::Events::Rule"]
    assert rules
    for rule in rules:
        props = rule["Properties"]
        if "ScheduleExpression" not in props:
            continue
        targets = [_logical_id(target["Arn"]) for target in props.get("Targets", [])]
        assert targets and set(targets) <= functions, props
