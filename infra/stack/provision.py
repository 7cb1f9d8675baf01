"""Creates the template's buckets and queues (each DLQ before the queue that redrives to it).
Idempotent: existing resources get their attributes brought in line with the template."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from shared.platform.template import QueueSpec, Template

log = logging.getLogger(__name__)


def _queue_order(template: Template) -> list[QueueSpec]:
    dlqs = {q.dead_letter_queue for q in template.queues.values() if q.dead_letter_queue}
    return sorted(template.queues.values(), key=lambda q: q.logical_id not in dlqs)


def provision_queues(sqs: Any, template: Template) -> dict[str, str]:
    """Returns logical id -> queue URL."""
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for queue in _queue_order(template):
        attributes = {
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(queue.retention_s),
        }
        if queue.dead_letter_queue:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arns[queue.dead_letter_queue],
                    "maxReceiveCount": queue.max_receive_count,
                }
            )
        try:
            url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        urls[queue.logical_id] = url
        arns[queue.logical_id] = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
    return urls


def _s3_cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's CorsRule spells two keys differently from the S3 API."""
    renames = {"MaxAge": "MaxAgeSeconds", "Id": "ID"}
    return {renames.get(key, key): value for key, value in rule.items()}


def delete_bucket(s3: Any, name: str) -> None:
    """Empties a bucket (every page of it) and removes it."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=name)


def provision_buckets(s3: Any, template: Template, *, allowed_origins: list[str]) -> None:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in template.buckets.values():
        if bucket.name not in existing:
            log.info("creating bucket %s", bucket.name)
            s3.create_bucket(Bucket=bucket.name)
        if bucket.cors_rules:
            rules = [_s3_cors_rule(rule) for rule in bucket.cors_rules]
            if allowed_origins:  # the SPA's origin(s) from settings replace the template's "*"
                for rule in rules:
                    rule["AllowedOrigins"] = allowed_origins
            try:
                s3.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": rules})
            except ClientError as exc:
                # Some S3-compatible stores do not implement bucket CORS; presigned uploads
                # from the SPA then need the store's own CORS setting.
                log.warning(
                    "bucket CORS not set on %s: %s", bucket.name, exc.response["Error"]["Code"]
                )
