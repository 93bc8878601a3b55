"""boto3 clients created once per Lambda container (reused across warm invocations)."""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config

# Standard retry mode retries throttling and transient errors with backoff.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@functools.cache
def client(service: str):
    return boto3.client(service, config=_CONFIG)
