"""Airflow Connections as the operators' credentials, without the secret ever travelling.

The Lambdas read credentials from Secrets Manager by ARN. When a task names an Airflow
Connection instead, the operator keeps a secret of its own in step with it
(``step-patterns/pipedrive/<conn_id>``, ``step-patterns/redshift/<conn_id>``, tagged
``managed-by=step-patterns``) and passes only that secret's ARN: the token or password stays
in the Connection and in Secrets Manager, never in execution input, XCom, logs or S3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook
from airflow.sdk import BaseHook

from step_patterns.provider_info import PIPEDRIVE_UI_FIELD_BEHAVIOUR

OWNED_SECRET_PREFIX = "step-patterns"
MANAGED_TAG = {"Key": "managed-by", "Value": "step-patterns"}
PIPEDRIVE_DEFAULT_BASE_URL = "https://api.pipedrive.com"


class ConnectionProblem(ValueError):
    """A connection cannot serve as the task's credentials (one line saying why)."""


class OwnedSecretsHook(SecretsManagerHook):
    """Create-or-update of the Secrets Manager secrets step-patterns owns."""

    def ensure_owned_secret(self, name: str, value: str, what: str) -> str:
        """The ARN of secret ``name`` holding ``value``: created when missing, written only when it differs.

        A secret of that name that step-patterns did not create (no ``managed-by`` tag) is left alone.
        """
        client = self.conn
        try:
            described = client.describe_secret(SecretId=name)
        except client.exceptions.ResourceNotFoundException:
            created = client.create_secret(
                Name=name, SecretString=value, Tags=[MANAGED_TAG],
                Description=f"{what}; kept in step with the Airflow connection by step-patterns",
            )
            self.log.info("Created secret %s for %s", created["ARN"], what)
            return created["ARN"]
        if MANAGED_TAG not in (described.get("Tags") or []):
            raise ConnectionProblem(
                f"secret {name} exists but is not managed by step-patterns (no tag "
                f"{MANAGED_TAG['Key']}={MANAGED_TAG['Value']}): not overwriting it"
            )
        current = client.get_secret_value(SecretId=name).get("SecretString")
        if current != value:
            client.put_secret_value(SecretId=name, SecretString=value)
            self.log.info("Updated secret %s: %s changed", described["ARN"], what)
        return described["ARN"]


def owned_secret_name(kind: str, conn_id: str) -> str:
    return f"{OWNED_SECRET_PREFIX}/{kind}/{conn_id}"


class PipedriveHook(BaseHook):
    """The ``pipedrive`` connection: company domain (Host) and API token (Password).

    Host is the company domain (``mycompany`` -> ``https://mycompany.pipedrive.com``), a host
    name (``mycompany.pipedrive.com``), or a full URL used as given (``http://127.0.0.1:8080``).
    """

    conn_name_attr = "pipedrive_conn_id"
    default_conn_name = "pipedrive_default"
    conn_type = "pipedrive"
    hook_name = "Pipedrive"

    def __init__(self, pipedrive_conn_id: str = default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.pipedrive_conn_id = pipedrive_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The form of provider_info (Airflow >= 3.2 reads it there; older ones ask the hook)."""
        return {key.replace("-", "_"): value for key, value in PIPEDRIVE_UI_FIELD_BEHAVIOUR.items()}

    def base_url(self) -> str:
        return pipedrive_base_url(self.get_connection(self.pipedrive_conn_id).host, self.pipedrive_conn_id)

    def api_token(self) -> str:
        token = (self.get_connection(self.pipedrive_conn_id).password or "").strip()
        if not token:
            raise ConnectionProblem(f"connection {self.pipedrive_conn_id!r} has no API token (its Password field)")
        return token

    def owned_secret_arn(self, secrets: OwnedSecretsHook) -> str:
        """ARN of the owned secret holding this connection's token (``{"api_token": ...}``)."""
        return secrets.ensure_owned_secret(
            owned_secret_name("pipedrive", self.pipedrive_conn_id),
            json.dumps({"api_token": self.api_token()}),
            f"the Pipedrive token of connection {self.pipedrive_conn_id}",
        )


def pipedrive_base_url(host: str | None, conn_id: str) -> str:
    host = (host or "").strip().rstrip("/")
    if not host:
        raise ConnectionProblem(f"connection {conn_id!r} has no company domain (its Host field)")
    if "://" in host:
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConnectionProblem(f"connection {conn_id!r}: Host {host!r} is not an http(s) URL")
        return host
    if "." in host:
        return f"https://{host}"
    return f"https://{host}.pipedrive.com"


@dataclass(frozen=True)
class RedshiftTarget:
    """Where and as whom a statement runs, as the Data API takes it."""

    database: str
    cluster_identifier: str | None
    workgroup_name: str | None
    secret_arn: str | None
    db_user: str | None


class RedshiftConnectionHook(BaseHook):
    """The amazon provider's ``redshift`` connection, read for the Data API.

    - Schema: the database (the task's ``database`` wins when given).
    - Extra ``cluster_identifier``, or ``is_serverless: true`` with ``serverless_work_group``;
      else the first label of Host (``mycluster.abc123.eu-west-1.redshift.amazonaws.com``).
    - Login and Password: kept in an owned secret ``{"username", "password"}`` (the shape the
      Data API reads); Login without Password: ``db_user`` (temporary credentials, clusters only);
      neither: the caller's IAM identity.
    """

    conn_name_attr = "redshift_conn_id"
    default_conn_name = "redshift_default"
    conn_type = "redshift"
    hook_name = "Amazon Redshift"

    def __init__(self, redshift_conn_id: str = default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.redshift_conn_id = redshift_conn_id

    def target(self, secrets: OwnedSecretsHook, *, database: str | None = None,
               cluster_identifier: str | None = None, workgroup_name: str | None = None) -> RedshiftTarget:
        conn = self.get_connection(self.redshift_conn_id)
        extra = conn.extra_dejson
        where = f"connection {self.redshift_conn_id!r}"
        if not (cluster_identifier or workgroup_name):
            host_label = (conn.host or "").split(".")[0] or None
            if str(extra.get("is_serverless", "")).lower() == "true":
                workgroup_name = extra.get("serverless_work_group") or host_label
            else:
                cluster_identifier = extra.get("cluster_identifier") or host_label
            if not (cluster_identifier or workgroup_name):
                raise ConnectionProblem(f"{where} names no cluster (extra cluster_identifier or Host) "
                                        "and no workgroup (extra is_serverless, serverless_work_group)")
        database = database or conn.schema
        if not database:
            raise ConnectionProblem(f"{where} has no database (its Schema field) and the task gives none")
        secret_arn = db_user = None
        if conn.password:
            if not conn.login:
                raise ConnectionProblem(f"{where} has a Password but no Login")
            secret_arn = secrets.ensure_owned_secret(
                owned_secret_name("redshift", self.redshift_conn_id),
                json.dumps({"username": conn.login, "password": conn.password}),
                f"the Redshift credentials of connection {self.redshift_conn_id}",
            )
        elif conn.login:
            if workgroup_name:
                raise ConnectionProblem(f"{where}: a Login without Password means db_user, which Redshift "
                                        "Serverless does not take; give the Password too or neither")
            db_user = conn.login
        return RedshiftTarget(database, cluster_identifier, workgroup_name, secret_arn, db_user)
