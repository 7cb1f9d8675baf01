"""boto3 clients for the S3, SQS and API Gateway management APIs: local servers in dev, AWS in
production."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from shared.platform.settings import Settings


def _config(settings: Settings, **extra: Any) -> Config:
    return Config(
        region_name=settings.aws_region,
        connect_timeout=settings.dependency_timeout_s,
        read_timeout=max(settings.dependency_timeout_s, 25),  # SQS long polls wait up to 20 s
        retries={"mode": "standard", "max_attempts": 3},
        **extra,
    )


def _credentials(settings: Settings) -> dict[str, Any]:
    if settings.env == "prod":
        return {}  # the function's IAM role
    return {
        "aws_access_key_id": settings.aws_access_key_id,
        "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value(),
    }


def s3_client(settings: Settings, *, public: bool = False) -> Any:
    """`public=True` signs URLs for the browser-facing endpoint (presigned uploads)."""
    endpoint = (settings.s3_public_endpoint_url if public else None) or settings.s3_endpoint
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=_config(settings, signature_version="s3v4", s3={"addressing_style": "path"}),
        **_credentials(settings),
    )


def sqs_client(settings: Settings) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=settings.sqs_endpoint,
        config=_config(settings),
        **_credentials(settings),
    )


def management_api_client(settings: Settings, endpoint_url: str) -> Any:
    """API Gateway's connection-management API of one WebSocket stage (`post_to_connection`,
    `delete_connection`); the local gateway serves the same API on the loopback."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        config=_config(settings),
        **_credentials(settings),
    )
