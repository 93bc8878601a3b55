"""Where the Pipedrive API token comes from: Secrets Manager in Lambda, the environment locally.

The secret string may be the raw token or JSON ``{"api_token": "..."}``. It is fetched once
per Lambda container (cached by ARN) and never logged. Errors name the secret's ARN (never
its value), so the run's failure says which secret to fix.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Mapping

from botocore.exceptions import ClientError

ENV_VAR = "PIPEDRIVE_API_TOKEN"

_cache: dict[str, str] = {}
_cache_lock = threading.Lock()


class TokenNotConfigured(RuntimeError):
    """No usable token: the secret (or ``PIPEDRIVE_API_TOKEN``) is empty or has no ``api_token``."""


class TokenSecretNotFound(TokenNotConfigured):
    """The secret ARN names no secret: mistyped, deleted, or in another account or region."""


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
        try:
            response = secrets_client.get_secret_value(SecretId=secret_arn)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            raise TokenSecretNotFound(
                f"the Pipedrive token secret {secret_arn} does not exist (Secrets Manager: "
                "ResourceNotFoundException); check pipedrive_secret_arn, its account and region"
            ) from None
        if "SecretString" not in response:
            raise TokenNotConfigured(f"secret {secret_arn} has no SecretString (binary secrets are not supported)")
        try:
            token = token_from_secret_string(response["SecretString"])
        except TokenNotConfigured as error:
            raise TokenNotConfigured(f"secret {secret_arn}: {error}") from None
        with _cache_lock:
            _cache[secret_arn] = token
        return token
    environ = os.environ if env is None else env
    token = environ.get(ENV_VAR, "").strip()
    if not token:
        raise TokenNotConfigured(f"no Pipedrive API token: set {ENV_VAR} (or give the secret ARN in Lambda)")
    return token


def forget_api_token(secret_arn: str) -> None:
    """Read ``secret_arn`` again next time: Pipedrive refused its token, which may be corrected meanwhile."""
    with _cache_lock:
        _cache.pop(secret_arn, None)


def clear_token_cache() -> None:
    with _cache_lock:
        _cache.clear()
