"""SecretArn read the way the Data API reads it: at ExecuteStatement / BatchExecuteStatement,
before the statement is accepted.

On AWS the Data API fetches the secret with the caller's identity while handling the call:
a secret it cannot read, or one without ``username`` and ``password``, makes the call itself
fail with a ValidationException (no statement id comes back). The second message is AWS's
own ("username and password in secret cannot be empty", boto/boto3#2899). For a missing
secret we found no public source of AWS's wording: the sandbox says what Secrets Manager
says and names the ARN. Of ExecuteStatement's error shapes (botocore's redshift-data model)
ValidationException is the one for a bad request; its ResourceNotFoundException carries a
ResourceId and the Data API uses it for its own resources (statements, sessions).

The secret is read from moto's Secrets Manager backend in this process (the one moto's
server answers from), for the caller's account and region: no HTTP call back into the
server that is handling this very request, and no fault injected into Secrets Manager's
API (``LocalCloud.fail_aws``) applies to it. Cross-account secrets (resource policies) are
not modelled: an ARN of another account or region is not found.
"""

from __future__ import annotations

import json

from moto.core.exceptions import JsonRESTError
from moto.secretsmanager.exceptions import SecretNotFoundException
from moto.secretsmanager.models import secretsmanager_backends

from .warehouse import DataApiError

EMPTY_CREDENTIALS = "username and password in secret cannot be empty"


def check_secret(secret_arn: str, account_id: str, region: str) -> None:
    """Raise the Data API's ValidationException unless ``secret_arn`` holds a username and password."""
    backend = secretsmanager_backends[account_id][region]
    try:
        value = backend.get_secret_value(secret_arn, None, None)
    except SecretNotFoundException:
        raise DataApiError(
            "ValidationException", f"Secrets Manager can't find the specified secret: {secret_arn}"
        ) from None
    except JsonRESTError as error:  # marked for deletion, no current value, ...
        raise DataApiError(
            "ValidationException", f"Secrets Manager could not return the secret {secret_arn}: {error.message}"
        ) from None
    if not _has_credentials(value.get("SecretString")):
        raise DataApiError("ValidationException", EMPTY_CREDENTIALS)


def _has_credentials(secret_string: str | None) -> bool:
    try:
        fields = json.loads(secret_string or "")
    except ValueError:
        return False
    return isinstance(fields, dict) and all(
        isinstance(fields.get(key), str) and fields[key] for key in ("username", "password")
    )
