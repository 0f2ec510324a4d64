"""Schema registry credentials (basic auth, bearer token) and TLS from the environment, against a
stand-in registry that demands them; secrets are never shown and wrong ones fail once, naming the fix."""

from __future__ import annotations

import json

import pytest
from certificates import issue_certificates
from dagster import Definitions
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from schema_registry_standin import Registry, serve_registry

from resources.client_settings import ClientConfigurationError
from resources.schema_registry import SchemaRegistryResource

pytestmark = pytest.mark.unit

PASSWORD = "registry-password-93be"
TOKEN = "registry-token-0c4f"
SCHEMA = {"type": "record", "name": "Customer", "fields": [{"name": "id", "type": "string"}]}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def registry(certificates, monkeypatch):
    """The stand-in over HTTPS, and the platform's settings for it with basic auth."""
    with serve_registry(
        Registry({7: json.dumps(SCHEMA)}, "platform", PASSWORD, TOKEN), certificates.certificate, certificates.key
    ) as running:
        monkeypatch.setenv("SCHEMA_REGISTRY_URL", running.url)
        monkeypatch.setenv("SCHEMA_REGISTRY_SSL_CA_LOCATION", str(certificates.ca))
        monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", f"platform:{PASSWORD}")
        yield running


def test_basic_auth_over_tls_looks_schemas_up(registry):
    lookup = SchemaRegistryResource.from_env().lookup()
    assert lookup(7)["name"] == "Customer"
    assert registry.authorizations and all(a and a.startswith("Basic ") for a in registry.authorizations)


def test_a_static_bearer_token_looks_schemas_up(registry, monkeypatch):
    monkeypatch.delenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO")
    monkeypatch.setenv("SCHEMA_REGISTRY_BEARER_AUTH_CREDENTIALS_SOURCE", "STATIC_TOKEN")
    monkeypatch.setenv("SCHEMA_REGISTRY_BEARER_AUTH_LOGICAL_CLUSTER", "lsrc-test")
    monkeypatch.setenv("SCHEMA_REGISTRY_BEARER_AUTH_TOKEN", TOKEN)
    assert SchemaRegistryResource.from_env().lookup()(7)["name"] == "Customer"
    assert registry.authorizations[-1] == f"Bearer {TOKEN}"


def test_the_user_info_comes_from_a_mounted_file(registry, monkeypatch, tmp_path):
    mounted = tmp_path / "user-info"
    mounted.write_text(f"platform:{PASSWORD}\n")
    monkeypatch.delenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO")
    monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE", str(mounted))
    assert SchemaRegistryResource.from_env().lookup()(7)["name"] == "Customer"


def test_the_dagster_ui_shows_the_variable_never_the_credentials(registry):
    registry_resource = SchemaRegistryResource.from_env()
    snapshot = serialize_value(
        RepositorySnap.from_def(Definitions(resources={"schema_registry": registry_resource}).get_repository_def())
    )
    assert "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in snapshot and registry.url in snapshot
    assert PASSWORD not in snapshot


def test_wrong_credentials_fail_once_naming_the_variable_not_the_password(registry, monkeypatch):
    monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "platform:wrong-" + PASSWORD)
    with pytest.raises(ClientConfigurationError, match="SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") as rejected:
        SchemaRegistryResource.from_env().lookup()
    assert PASSWORD not in str(rejected.value) and "rejected the credentials" in str(rejected.value)


def test_missing_credentials_say_which_variables_to_set(registry, monkeypatch):
    monkeypatch.delenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO")
    with pytest.raises(ClientConfigurationError, match="set SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"):
        SchemaRegistryResource.from_env().lookup()


def test_an_untrusted_registry_certificate_names_the_ca_variable(registry, monkeypatch, tmp_path):
    monkeypatch.setenv("SCHEMA_REGISTRY_SSL_CA_LOCATION", str(issue_certificates(tmp_path, "another CA").ca))
    with pytest.raises(ClientConfigurationError, match="SCHEMA_REGISTRY_SSL_CA_LOCATION"):
        SchemaRegistryResource.from_env().lookup()


def test_a_secret_given_as_a_value_is_refused():
    with pytest.raises(ClientConfigurationError, match="SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") as refused:
        SchemaRegistryResource(url="https://registry", security={"basic.auth.user.info": f"platform:{PASSWORD}"})
    assert PASSWORD not in str(refused.value)
