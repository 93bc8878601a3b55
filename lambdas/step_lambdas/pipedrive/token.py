"""Where the Pipedrive API token comes from: Secrets Manager in Lambda, the environment locally.

The secret string may be the raw token or JSON ``{"api_token": "..."}``. It is fetched once
per Lambda container (cached by ARN) and never logged.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Mapping

ENV_VAR = "PIPEDRIVE_API_TOKEN"

_cache: dict[str, str] = {}
_cache_lock = threading.Lock()


class TokenNotConfigured(RuntimeError):
    pass


def token_from_secret_string(secret_string: str) -> str:
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text).get("api_token")
        except (json.JSONDecodeError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise TokenNotConfigured('the Pipedrive secret is JSON but has no string "api_token" key')
        return value
    if not text:
        raise TokenNotConfigured("the Pipedrive secret is empty")
    return text


def load_api_token(secret_arn: str | None = None, *, env: Mapping[str, str] | None = None,
                   secrets_client: Any = None) -> str:
    """The token from Secrets Manager (``secret_arn`` given, cached) or from ``PIPEDRIVE_API_TOKEN``."""
    if secret_arn:
        with _cache_lock:
            if secret_arn in _cache:
                return _cache[secret_arn]
        if secrets_client is None:
            import boto3

            secrets_client = boto3.client("secretsmanager")
        response = secrets_client.get_secret_value(SecretId=secret_arn)
        if "SecretString" not in response:
            raise TokenNotConfigured(f"secret {secret_arn} has no SecretString (binary secrets are not supported)")
        token = token_from_secret_string(response["SecretString"])
        with _cache_lock:
            _cache[secret_arn] = token
        return token
    environ = os.environ if env is None else env
    token = environ.get(ENV_VAR, "").strip()
    if not token:
        raise TokenNotConfigured(f"no Pipedrive API token: set {ENV_VAR} (or give the secret ARN in Lambda)")
    return token


def clear_token_cache() -> None:
    with _cache_lock:
        _cache.clear()
