"""MigrateFunction (template.yaml): the stack's migrations, run by CloudFormation at deploy time.

`MigrationsResource` (an `AWS::CloudFormation::CustomResource`) invokes this handler on Create
and on every Update (its `FunctionVersion` property changes whenever the function's code, and so
`sql/`, does). It applies `sql/NNN_*.sql` and the seeds exactly as `make migrate` does
(`shared.platform.db.migrate`: each file once, under an advisory lock, checksums verified), so a
second run, or a rollback's re-run, changes nothing. Delete does nothing: the database outlives
the resource (its own deletion policy keeps a snapshot).

CloudFormation waits for an answer PUT to the event's pre-signed `ResponseURL` (the documented
custom-resource response protocol, as AWS's `cfn-response` module sends it), so every path,
a failure included, answers; an unanswered resource would hold the deploy for an hour.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Mapping
from typing import Any

from shared.platform.db.migrate import migrate
from shared.platform.secret_sources import load_secrets

log = logging.getLogger(__name__)

# CloudFormation shows the reason in the console and the deploy's events; it allows 4 KiB.
MAX_REASON = 1000


def database_url(environ: Mapping[str, str] = os.environ) -> str:
    """DATABASE_URL from the environment, else from SECRETS_ARNS (the RDS secret)."""
    url = environ.get("DATABASE_URL") or load_secrets(environ).get("DATABASE_URL")
    if not url:
        raise RuntimeError("no DATABASE_URL: set it, or SECRETS_ARNS naming the database secret")
    return url


def handler(event: dict[str, Any], context: Any) -> None:
    request_type = event.get("RequestType")
    status, reason, data = "SUCCESS", "", {}
    try:
        if request_type in ("Create", "Update"):
            report = migrate(database_url())
            data = {"Applied": len(report.applied), "AlreadyApplied": len(report.already_applied)}
            reason = f"applied {len(report.applied)} migration(s): {', '.join(report.applied)}"
            log.info("migrations done", extra=data)
        elif request_type != "Delete":
            raise ValueError(f"unknown RequestType {request_type!r}")
    except Exception as exc:  # any failure answers FAILED, so the deploy rolls back at once
        log.exception("migrations failed")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
    send_response(event, context, status, reason[:MAX_REASON], data)


def send_response(
    event: dict[str, Any], context: Any, status: str, reason: str, data: dict[str, Any]
) -> None:
    """PUTs the answer to the pre-signed ResponseURL (no Content-Type: the URL's signature
    names none)."""
    # A stable id: a new one on Update would make CloudFormation delete the "old" resource.
    physical_id = event.get("PhysicalResourceId") or f"{event.get('StackId', '')}/migrations"
    stream = getattr(context, "log_stream_name", "?")
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"see CloudWatch log stream {stream}",
            "PhysicalResourceId": physical_id,
            "StackId": event.get("StackId"),
            "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"),
            "NoEcho": False,
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's, https
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        log.info("custom resource answered", extra={"status": status, "http": answer.status})
