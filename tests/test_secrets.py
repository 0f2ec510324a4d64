"""Secrets come from the environment or AWS Secrets Manager and never reach logs or asset metadata."""

import json

import boto3
import pytest
from moto import mock_aws

from resources.secrets import SecretsError, load_aws_secrets_into_environment

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


def test_a_secret_that_is_not_json_is_named_in_the_error_without_its_value(aws, monkeypatch):
    aws.create_secret(Name="platform/broken", SecretString="plain-text-" + SECRET)
    monkeypatch.setenv("PLATFORM_AWS_SECRETS", "platform/broken")
    with pytest.raises(SecretsError) as error:
        load_aws_secrets_into_environment()
    assert "platform/broken" in str(error.value) and SECRET not in str(error.value)


def test_nothing_is_read_when_no_secret_store_is_configured(monkeypatch):
    monkeypatch.delenv("PLATFORM_AWS_SECRETS", raising=False)
    assert load_aws_secrets_into_environment() == []
