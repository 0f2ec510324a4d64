"""Platform secrets: environment variables, filled from AWS Secrets Manager or Azure Key Vault where configured.

`PLATFORM_AWS_SECRETS` names (or ARNs of) Secrets Manager secrets, `PLATFORM_AZURE_KEY_VAULT_SECRETS`
names secrets of the Key Vault at `PLATFORM_AZURE_KEY_VAULT_URL`; each secret's value is a JSON object
like `{"PLATFORM_PII_KEY": "...", "KAFKA_SASL_PASSWORD": "..."}`. When the code location loads, every
key not already set in the environment is set from them: through dagster-aws's client (region,
endpoint and credentials from the usual AWS settings), and through azure-keyvault-secrets with
azure-identity's DefaultAzureCredential (workload identity on AKS, a managed identity, or
AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET). Values are never logged and never written to
asset metadata: only the names of the variables that were filled are returned.
"""

from __future__ import annotations

import json
import os
from typing import Any, Protocol

ENV_SOURCES = "PLATFORM_AWS_SECRETS"
ENV_KEY_VAULT_URL = "PLATFORM_AZURE_KEY_VAULT_URL"
ENV_KEY_VAULT_SECRETS = "PLATFORM_AZURE_KEY_VAULT_SECRETS"


class SecretsError(RuntimeError):
    """A configured secret could not be read; the message names the secret, never its value."""


class KeyVaultSecrets(Protocol):
    """What is read of azure.keyvault.secrets.SecretClient."""

    def get_secret(self, name: str) -> Any: ...


def _listed(variable: str) -> list[str]:
    return [s.strip() for s in os.environ.get(variable, "").split(",") if s.strip()]


def _fill_unset(value: str | None, described: str) -> list[str]:
    """Set every variable of the secret's JSON object that the environment does not set; their names."""
    try:
        values = json.loads(value or "")
        if not isinstance(values, dict):
            raise TypeError
    except (TypeError, json.JSONDecodeError) as error:
        raise SecretsError(f"{described} must hold a JSON object of environment variable names to values") from error
    filled = []
    for variable, content in values.items():
        if variable not in os.environ:
            os.environ[variable] = str(content)
            filled.append(variable)
    return filled


def load_aws_secrets_into_environment() -> list[str]:
    """Fill unset environment variables from the configured Secrets Manager secrets; return their names."""
    sources = _listed(ENV_SOURCES)
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
        filled += _fill_unset(client.get_secret_value(SecretId=arn).get("SecretString"), f"secret `{name}`")
    return sorted(filled)


def key_vault_client(vault_url: str) -> KeyVaultSecrets:
    """The Key Vault client with azure-identity's default credential chain (workload identity on AKS)."""
    try:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient
    except ImportError as error:
        raise SecretsError(
            f"{ENV_KEY_VAULT_SECRETS} is set, but azure-keyvault-secrets and azure-identity are not installed"
        ) from error
    return SecretClient(vault_url, DefaultAzureCredential())


def load_key_vault_secrets_into_environment(client: KeyVaultSecrets | None = None) -> list[str]:
    """Fill unset environment variables from the configured Key Vault secrets; return their names."""
    names = _listed(ENV_KEY_VAULT_SECRETS)
    if not names:
        return []
    vault_url = os.environ.get(ENV_KEY_VAULT_URL)
    if not vault_url:
        raise SecretsError(
            f"{ENV_KEY_VAULT_SECRETS} is set but {ENV_KEY_VAULT_URL} (https://<vault>.vault.azure.net) is not"
        )
    client = client or key_vault_client(vault_url)
    filled = []
    for name in names:
        try:
            value = client.get_secret(name).value
        except Exception as error:  # the SDK's errors name the secret and the reason, never a value
            raise SecretsError(f"Key Vault secret `{name}` in {vault_url} could not be read: {error}") from error
        filled += _fill_unset(value, f"Key Vault secret `{name}`")
    return sorted(filled)


def load_secrets_into_environment() -> list[str]:
    """Every configured secret store, AWS first; the names of the variables that were filled."""
    return sorted(load_aws_secrets_into_environment() + load_key_vault_secrets_into_environment())
