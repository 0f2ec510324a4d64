"""Platform secrets: environment variables, filled from AWS Secrets Manager where configured.

`PLATFORM_AWS_SECRETS` names (or ARNs of) Secrets Manager secrets whose values are JSON objects
like `{"PLATFORM_PII_KEY": "..."}`; when the code location loads, every key not already set in the
environment is set from them, through dagster-aws's client (region, endpoint and credentials from
the usual AWS settings). Values are never logged and never written to asset metadata: only the
names of the variables that were filled are returned.
"""

from __future__ import annotations

import json
import os

ENV_SOURCES = "PLATFORM_AWS_SECRETS"


class SecretsError(RuntimeError):
    """A configured secret could not be read; the message names the secret, never its value."""


def load_aws_secrets_into_environment() -> list[str]:
    """Fill unset environment variables from the configured Secrets Manager secrets; return their names."""
    sources = [s.strip() for s in os.environ.get(ENV_SOURCES, "").split(",") if s.strip()]
    if not sources:
        return []
    from dagster_aws.secretsmanager.secrets import construct_secretsmanager_client, get_secrets_from_arns

    client = construct_secretsmanager_client(
        max_attempts=3,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL"),
    )
    filled = []
    for name, arn in get_secrets_from_arns(client, sources).items():
        try:
            values = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
        except (KeyError, json.JSONDecodeError) as error:
            raise SecretsError(
                f"secret `{name}` must hold a JSON object of environment variable names to values"
            ) from error
        for variable, value in values.items():
            if variable not in os.environ:
                os.environ[variable] = str(value)
                filled.append(variable)
    return sorted(filled)
