"""Kafka security: SASL and TLS settings from the environment or mounted files, secrets never shown.

The broker tests run the embedded broker behind devstack.kafka_front with SASL (PLAIN, SCRAM) and TLS
on: the landing asset, the lag sensor and the simulator's producer reach it with the right settings,
and wrong ones fail within seconds with a message naming the variable to fix and never the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import pytest
from certificates import issue_certificates
from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context, materialize
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from helpers import JsonHandler

from devstack.broker import BrokerSecurity, start_broker
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.sensors import build_lag_sensor
from resources.client_settings import ClientConfigurationError
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from simulator.service import Publisher, ensure_topics
from simulator.source import Event

PASSWORD = "landing-password-7f3a9c1e"
CLIENT_SECRET = "oidc-client-secret-51d0"
TOKEN_KEY = "identity-provider-signing-key"
CONNECTION_STRING = (
    "Endpoint=sb://platform-test.servicebus.windows.net/;SharedAccessKeyName=landing;SharedAccessKey=c2VjcmV0LWtleQ=="
)


@pytest.mark.unit
def test_security_settings_come_from_kafka_variables_and_secrets_only_by_name():
    environ = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "landing",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CA_LOCATION": "/etc/kafka/ca.pem",
        "KAFKA_SSL_KEY_PASSWORD_FILE": "/var/run/secrets/kafka/key-password",
        "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": "oidc-secret",
        "KAFKA_BOOTSTRAP_SERVERS": "broker:9093",
        "KAFKA_PORT": "tcp://10.0.0.7:9092",  # what Kubernetes sets for a Service named `kafka`
    }
    security = KafkaResource.settings_from_env(environ)
    assert security.settings == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "landing",
        "ssl.ca.location": "/etc/kafka/ca.pem",
    }
    assert security.secrets_from_env == {
        "sasl.password": "KAFKA_SASL_PASSWORD",
        "sasl.oauthbearer.client.secret": "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
    }
    assert security.secrets_from_files == {"ssl.key.password": "/var/run/secrets/kafka/key-password"}


@pytest.mark.unit
def test_the_dagster_ui_shows_where_a_secret_comes_from_never_its_value(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "$ConnectionString")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", CONNECTION_STRING)
    kafka = KafkaResource.from_env()
    assert kafka.client_config()["sasl.password"] == CONNECTION_STRING
    snapshot = serialize_value(RepositorySnap.from_def(Definitions(resources={"kafka": kafka}).get_repository_def()))
    assert "KAFKA_SASL_PASSWORD" in snapshot and "$ConnectionString" in snapshot
    assert CONNECTION_STRING not in snapshot and "SharedAccessKey=" not in snapshot


@pytest.mark.unit
def test_a_secret_given_as_a_value_is_refused_naming_the_variable_to_use():
    with pytest.raises(ClientConfigurationError, match="KAFKA_SASL_PASSWORD") as refused:
        KafkaResource(extra_config={"sasl.password": PASSWORD})
    assert PASSWORD not in str(refused.value)


@pytest.mark.unit
def test_a_mounted_secret_file_is_read_when_each_client_is_built(tmp_path, monkeypatch):
    secret = tmp_path / "password"
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    kafka = KafkaResource.from_env()
    secret.write_text("first\n")
    assert kafka.client_config()["sasl.password"] == "first"
    secret.write_text("rotated")
    assert kafka.client_config()["sasl.password"] == "rotated"
    secret.unlink()
    with pytest.raises(ClientConfigurationError, match=f"KAFKA_SASL_PASSWORD_FILE names {secret}"):
        kafka.client_config()


@pytest.mark.unit
def test_a_secret_variable_that_went_missing_is_named(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    kafka = KafkaResource.from_env()
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    with pytest.raises(ClientConfigurationError, match="KAFKA_SASL_PASSWORD is not set"):
        kafka.client_config()


# --- against the broker with SASL and TLS on -------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return issue_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure_broker(certificates, tmp_path_factory):
    """The embedded broker reachable only over TLS, after a SASL login as `landing` or `$ConnectionString`."""
    users = {"landing": PASSWORD, "$ConnectionString": CONNECTION_STRING}
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    security = BrokerSecurity(users, certificates.certificate, certificates.key, TOKEN_KEY)
    running = start_broker(log_path=log, security=security)
    yield running.bootstrap
    running.stop()
    assert PASSWORD not in log.read_text(errors="replace")


@pytest.fixture
def secure_env(secure_broker, certificates, monkeypatch):
    """The platform's settings for the secure broker: SCRAM-SHA-512 over TLS with the test CA."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", secure_broker)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "landing")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", str(certificates.ca))
    return monkeypatch


def contract_on_a_fresh_topic():
    return parse_contract(
        {
            "name": "secured",
            "source": {"format": "json", "topic": f"secured-{uuid.uuid4().hex[:8]}"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )


def publish(contract, count: int) -> None:
    """Through the simulator's producer, with the platform's security settings from the environment."""
    security = KafkaResource.settings_from_env().client_config()
    bootstrap = KafkaResource.from_env().bootstrap_servers
    ensure_topics(bootstrap, contract.source.topics, config=security)
    moment = datetime(2026, 1, 1, 5, tzinfo=UTC)
    events = [
        Event(contract.source.topics[0], f"k{i}", {"id": f"k{i}", "ts": moment.isoformat(), "v": i}, moment, moment)
        for i in range(count)
    ]
    # One message per batch: the embedded broker reports end offsets correctly only then.
    assert Publisher(bootstrap, **security, **{"batch.num.messages": 1}).publish(events) == count


def land(contract, tmp_path, kafka: KafkaResource):
    lake = LakeResource(root=str(tmp_path / "lake"))
    result = materialize(
        [build_landing_asset(contract)],
        resources={"kafka": kafka, "lake": lake, "schema_registry": SchemaRegistryResource()},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    return result, lake


@pytest.mark.broker
def test_right_credentials_over_tls_land_and_the_password_reaches_no_event(secure_env, tmp_path, capfd):
    contract = contract_on_a_fresh_topic()
    publish(contract, 7)
    kafka = KafkaResource.from_env().model_copy(update={"group_prefix": f"secure-{uuid.uuid4().hex[:6]}"})

    result, lake = land(contract, tmp_path, kafka)

    assert result.success
    assert lake.read("landing", "secured").num_rows == 7
    events = [serialize_value(event) for event in result.all_events]
    assert events and not [event for event in events if PASSWORD in event]
    output = capfd.readouterr()
    assert PASSWORD not in output.out + output.err, "nor any log line of Dagster or librdkafka"


@pytest.mark.broker
def test_the_lag_sensor_reads_the_lag_with_the_same_settings(secure_env):
    contract = contract_on_a_fresh_topic()
    publish(contract, 4)
    kafka = KafkaResource.from_env()
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"kafka": kafka})
    result = build_lag_sensor(contract, lag_threshold=3)(context)
    assert isinstance(result, SensorResult)
    assert [request.tags["lag"] for request in result.run_requests] == ["4"]


@pytest.mark.broker
def test_the_lag_sensor_fails_fast_on_a_wrong_password_naming_the_variable(secure_env):
    contract = contract_on_a_fresh_topic()
    secure_env.setenv("KAFKA_SASL_PASSWORD", "wrong-" + PASSWORD)
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"kafka": KafkaResource.from_env()})
    started = time.monotonic()
    with pytest.raises(ClientConfigurationError, match="KAFKA_SASL_PASSWORD") as rejected:
        build_lag_sensor(contract, lag_threshold=3)(context)
    assert time.monotonic() - started < 15 and PASSWORD not in str(rejected.value)


@pytest.mark.broker
def test_event_hubs_connection_string_from_a_mounted_file(secure_env, tmp_path):
    """Azure Event Hubs' form: PLAIN with the user `$ConnectionString` and the connection string as password."""
    mounted = tmp_path / "connection-string"
    mounted.write_text(CONNECTION_STRING + "\n")
    secure_env.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    secure_env.setenv("KAFKA_SASL_USERNAME", "$ConnectionString")
    secure_env.delenv("KAFKA_SASL_PASSWORD")
    secure_env.setenv("KAFKA_SASL_PASSWORD_FILE", str(mounted))
    contract = contract_on_a_fresh_topic()
    publish(contract, 3)
    assert sum(lag.lag for lag in KafkaResource.from_env().lag(contract.name, contract.source.topics)) == 3


def assert_fails_fast_naming(result, started: float, variable: str) -> str:
    elapsed = time.monotonic() - started
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = str(failure.step_failure_data.error)
    assert variable in message, message
    assert elapsed < 15, f"took {elapsed:.1f} s: a rejected login must not wait for timeouts and retries"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"], "retrying cannot help"
    return message


@pytest.mark.broker
def test_a_wrong_password_fails_fast_naming_the_variable_and_not_the_password(secure_env, tmp_path, capfd):
    contract = contract_on_a_fresh_topic()
    publish(contract, 1)
    wrong = "not-the-" + PASSWORD
    secure_env.setenv("KAFKA_SASL_PASSWORD", wrong)
    started = time.monotonic()
    result, _ = land(contract, tmp_path, KafkaResource.from_env())
    message = assert_fails_fast_naming(result, started, "KAFKA_SASL_PASSWORD")
    assert wrong not in message and "authentication" in message.lower()
    assert not [e for e in map(serialize_value, result.all_events) if wrong in e]
    output = capfd.readouterr()
    assert "authentication" in output.err.lower(), "the failure is logged"
    assert wrong not in output.out + output.err


@pytest.mark.broker
def test_an_untrusted_broker_certificate_fails_fast_naming_the_ca_variable(secure_env, tmp_path):
    contract = contract_on_a_fresh_topic()
    publish(contract, 1)
    secure_env.setenv("KAFKA_SSL_CA_LOCATION", str(issue_certificates(tmp_path / "other", "another CA").ca))
    started = time.monotonic()
    result, _ = land(contract, tmp_path, KafkaResource.from_env())
    assert_fails_fast_naming(result, started, "KAFKA_SSL_CA_LOCATION")


def signed_token(claims: dict) -> str:
    def encoded(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    unsigned = f"{encoded(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{encoded(json.dumps(claims).encode())}"
    return f"{unsigned}.{encoded(hmac.new(TOKEN_KEY.encode(), unsigned.encode(), hashlib.sha256).digest())}"


@pytest.fixture
def token_endpoint():
    """An identity provider's client-credentials token endpoint (as Entra ID's), for `landing-app` only."""
    issued: list[str] = []

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            expected = "Basic " + base64.b64encode(f"landing-app:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                body, status = {"error": "invalid_client"}, 401
            else:
                claims = {"sub": "landing-app", "iat": int(time.time()), "exp": int(time.time()) + 600}
                body, status = {"access_token": signed_token(claims), "token_type": "Bearer", "expires_in": 600}, 200
                issued.append(body["access_token"])
            self.answer(status, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/tenant/oauth2/v2.0/token", issued
    server.shutdown()


@pytest.fixture
def oidc_env(secure_env, token_endpoint):
    """OAUTHBEARER with client credentials from a token endpoint, as for Event Hubs with Entra ID."""
    url, _ = token_endpoint
    secure_env.setenv("KAFKA_SASL_MECHANISM", "OAUTHBEARER")
    secure_env.delenv("KAFKA_SASL_USERNAME")
    secure_env.delenv("KAFKA_SASL_PASSWORD")
    secure_env.setenv("KAFKA_SASL_OAUTHBEARER_METHOD", "oidc")
    secure_env.setenv("KAFKA_SASL_OAUTHBEARER_CLIENT_ID", "landing-app")
    secure_env.setenv("KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", CLIENT_SECRET)
    secure_env.setenv("KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", url)
    secure_env.setenv("KAFKA_SASL_OAUTHBEARER_SCOPE", "https://platform-test.servicebus.windows.net/.default")
    return secure_env


@pytest.mark.broker
def test_oauthbearer_client_credentials_reach_the_broker_with_the_issued_token(oidc_env, token_endpoint):
    contract = contract_on_a_fresh_topic()
    publish(contract, 2)
    assert sum(lag.lag for lag in KafkaResource.from_env().lag(contract.name, contract.source.topics)) == 2
    _, issued = token_endpoint
    assert issued, "the clients logged in with tokens from the endpoint"


@pytest.mark.broker
def test_a_wrong_client_secret_fails_fast_naming_it(oidc_env, tmp_path):
    contract = contract_on_a_fresh_topic()
    publish(contract, 1)
    oidc_env.setenv("KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", "wrong-" + CLIENT_SECRET)
    started = time.monotonic()
    result, _ = land(contract, tmp_path, KafkaResource.from_env())
    message = assert_fails_fast_naming(result, started, "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET")
    assert CLIENT_SECRET not in message


CLIENT_KEY_PASSWORD = "client-key-password"


@pytest.fixture(scope="module")
def mutual_tls_broker(certificates, tmp_path_factory):
    """The embedded broker reachable only over TLS with a client certificate its CA signed (no SASL)."""
    log = tmp_path_factory.mktemp("mtls") / "broker.log"
    security = BrokerSecurity(certificate=certificates.certificate, key=certificates.key, client_ca=certificates.ca)
    running = start_broker(log_path=log, security=security)
    yield running.bootstrap
    running.stop()


@pytest.fixture
def mutual_tls_env(mutual_tls_broker, certificates, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", mutual_tls_broker)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", str(certificates.ca))
    monkeypatch.setenv("KAFKA_SSL_CERTIFICATE_LOCATION", str(certificates.client_certificate))
    monkeypatch.setenv("KAFKA_SSL_KEY_LOCATION", str(certificates.client_key))
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", CLIENT_KEY_PASSWORD)
    return monkeypatch


@pytest.mark.broker
def test_a_client_certificate_with_its_encrypted_key_reaches_the_broker(mutual_tls_env):
    contract = contract_on_a_fresh_topic()
    publish(contract, 2)
    assert sum(lag.lag for lag in KafkaResource.from_env().lag(contract.name, contract.source.topics)) == 2


@pytest.mark.broker
def test_a_wrong_key_password_is_named_before_connecting(mutual_tls_env):
    mutual_tls_env.setenv("KAFKA_SSL_KEY_PASSWORD", "wrong-" + CLIENT_KEY_PASSWORD)
    with pytest.raises(ClientConfigurationError, match="KAFKA_SSL_KEY_PASSWORD") as rejected:
        KafkaResource.from_env().lag("secured", ("any-topic",))
    assert CLIENT_KEY_PASSWORD not in str(rejected.value)
