"""Looking into the SQS queues of a template from tests: a queue's URL, and how many messages
it still holds (visible or in flight)."""

from __future__ import annotations

from typing import Any


def queue_url(sqs: Any, template: Any, logical_id: str) -> str:
    return str(sqs.get_queue_url(QueueName=template.queue_name(logical_id))["QueueUrl"])


def held(sqs: Any, url: str) -> int:
    """Messages visible plus in flight (received, not yet deleted)."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
