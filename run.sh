#!/bin/sh
# Lambda entry point (template.yaml Handler) behind the AWS Lambda Web Adapter: serves the
# function named by FUNCTION_MODULE on AWS_LWA_PORT; SQS and schedule events arrive at /events.
exec python -m uvicorn --factory shared.services:lambda_app \
  --host 127.0.0.1 --port "${AWS_LWA_PORT:-8000}" --no-access-log
