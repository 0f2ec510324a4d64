"""Secrets come from the environment, AWS Secrets Manager or Azure Key Vault and never reach logs or asset metadata."""

import json
import os
import sys
import time

import boto3
import pytest
from moto import mock_aws

from platform_assets.secrets import (
    SecretsError,
    load_aws_secrets_into_environment,
    load_key_vault_secrets_into_environment,
)

SECRET = "a-pii-key-from-secrets-manager-0123456789"


@pytest.fixture
def aws(monkeypatch):
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")


@pytest.mark.unit
def test_unset_variables_are_filled_from_secrets_manager(aws, monkeypatch, capsys):
    aws.create_secret(Name="platform/prod", SecretString=json.dumps({"PLATFORM_PII_KEY": SECRET, "KEPT": "x"}))
    monkeypatch.delenv("PLATFORM_PII_KEY", raising=False)
    monkeypatch.setenv("KEPT", "from-environment")
    monkeypatch.setenv("PLATFORM_AWS_SECRETS", "platform/prod")
    monkeypatch.setenv("PLATFORM_MODE", "prod")

    assert load_aws_secrets_into_environment() == ["PLATFORM_PII_KEY"]

    from platform_assets.lib.pii import pii_key

    assert pii_key() == SECRET.encode()
    import os

    assert os.environ["KEPT"] == "from-environment", "the environment wins over the secret store"
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


@pytest.mark.unit
def test_a_secret_that_is_not_json_is_named_in_the_error_without_its_value(aws, monkeypatch):
    aws.create_secret(Name="platform/broken", SecretString="plain-text-" + SECRET)
    monkeypatch.setenv("PLATFORM_AWS_SECRETS", "platform/broken")
    with pytest.raises(SecretsError) as error:
        load_aws_secrets_into_environment()
    assert "platform/broken" in str(error.value) and SECRET not in str(error.value)


@pytest.mark.unit
def test_nothing_is_read_when_no_secret_store_is_configured(monkeypatch):
    monkeypatch.delenv("PLATFORM_AWS_SECRETS", raising=False)
    assert load_aws_secrets_into_environment() == []


@pytest.mark.broker
@pytest.mark.spark
def test_the_pii_key_reaches_no_event_metadata_or_table(platform_stack, monkeypatch):
    """A run in prod mode with the key in the environment: every event of its runs (logs, metadata,
    check results) and every stored row is searched for the key and finds it nowhere."""
    from datetime import UTC, datetime, timedelta

    from dagster._serdes import serialize_value
    from helpers import run

    from platform_assets.partitions import hour_key
    from simulator.source import Rates

    monkeypatch.setenv("PLATFORM_MODE", "prod")
    monkeypatch.setenv("PLATFORM_PII_KEY", SECRET)
    stack = platform_stack(Rates(creates=5, updates=5, deletes=1, transactions=5), seed=31)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(3):
        stack.publish(stack.source.hour(start + timedelta(hours=hour)))
    landing = stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance)
    hourly = run(stack.defs, stack.instance, "hourly_job", hour_key(start), hour_key(start + timedelta(hours=2)))
    assert landing.success and hourly.success
    events = [serialize_value(e) for r in (landing, hourly) for e in stack.instance.all_logs(r.run_id)]
    assert len(events) > 50 and any("dagster/row_count" in e for e in events), "the runs must have logged metadata"
    assert not [e for e in events if SECRET in e]
    raw = stack.lake.read("raw", "customers").to_pylist()
    emails = [r["email"] for r in raw if r["email"] is not None]  # deletes carry no e-mail
    assert emails and all(len(email) == 64 and "@" not in email for email in emails), "stored as HMAC hashes"
    assert SECRET not in json.dumps(raw, default=str)


# --- Azure Key Vault ---------------------------------------------------------------------------------------


@pytest.fixture
def key_vault(tmp_path, monkeypatch):
    """The Key Vault stand-in over HTTPS, and an azure-keyvault-secrets client for it.

    The client is the SDK's own; only its credential is a static token (DefaultAzureCredential needs
    Azure) and the challenge's resource check is off (the stand-in is not at *.vault.azure.net)."""
    from azure.core.credentials import AccessToken
    from azure.keyvault.secrets import SecretClient
    from certificates import issue_certificates
    from key_vault_standin import Vault, serve_vault

    class StaticCredential:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("vault-token", int(time.time()) + 3600)

        def close(self):
            pass

    certificates = issue_certificates(tmp_path / "tls")
    secrets = {"platform-prod": json.dumps({"PLATFORM_PII_KEY": SECRET, "KEPT": "x"}), "broken": "plain-" + SECRET}
    with serve_vault(Vault(secrets, "vault-token"), certificates.certificate, certificates.key) as vault:
        monkeypatch.setenv("PLATFORM_AZURE_KEY_VAULT_URL", vault.url)
        client = SecretClient(
            vault.url, StaticCredential(), verify_challenge_resource=False, connection_verify=str(certificates.ca)
        )
        yield client


@pytest.mark.unit
def test_unset_variables_are_filled_from_key_vault(key_vault, monkeypatch, capsys):
    monkeypatch.delenv("PLATFORM_PII_KEY", raising=False)
    monkeypatch.setenv("KEPT", "from-environment")
    monkeypatch.setenv("PLATFORM_AZURE_KEY_VAULT_SECRETS", "platform-prod")
    assert load_key_vault_secrets_into_environment(key_vault) == ["PLATFORM_PII_KEY"]
    assert os.environ["PLATFORM_PII_KEY"] == SECRET
    assert os.environ["KEPT"] == "from-environment", "the environment wins over the secret store"
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


@pytest.mark.unit
@pytest.mark.parametrize(("name", "expected"), [("broken", "JSON object"), ("missing", "was not found")])
def test_a_key_vault_secret_that_is_missing_or_not_json_is_named_without_its_value(
    key_vault, monkeypatch, name, expected
):
    monkeypatch.setenv("PLATFORM_AZURE_KEY_VAULT_SECRETS", name)
    with pytest.raises(SecretsError, match=expected) as error:
        load_key_vault_secrets_into_environment(key_vault)
    assert f"`{name}`" in str(error.value) and SECRET not in str(error.value)


@pytest.mark.unit
def test_key_vault_secrets_without_the_vault_url_name_the_variable(monkeypatch):
    monkeypatch.setenv("PLATFORM_AZURE_KEY_VAULT_SECRETS", "platform-prod")
    monkeypatch.delenv("PLATFORM_AZURE_KEY_VAULT_URL", raising=False)
    with pytest.raises(SecretsError, match="PLATFORM_AZURE_KEY_VAULT_URL"):
        load_key_vault_secrets_into_environment()


@pytest.mark.unit
def test_key_vault_without_the_azure_packages_says_which_are_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as when azure-identity is not installed
    monkeypatch.setenv("PLATFORM_AZURE_KEY_VAULT_SECRETS", "platform-prod")
    monkeypatch.setenv("PLATFORM_AZURE_KEY_VAULT_URL", "https://platform.vault.azure.net")
    with pytest.raises(SecretsError, match="azure-keyvault-secrets and azure-identity are not installed"):
        load_key_vault_secrets_into_environment()
