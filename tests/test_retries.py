"""Retry policy: an unreachable broker or Spark server is retried as a transient failure; anything
else (bad data, a broken contract) fails at once, because it would fail the same way again."""

from __future__ import annotations

import pytest
from dagster import DagsterEventType, materialize

from devstack.broker import free_port
from platform_assets import retries
from platform_assets.current import build_current_asset
from platform_assets.entity import asset_key
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import ContractError, load_contracts
from resources.kafka import KafkaResource, KafkaUnavailableError
from resources.schema_registry import SchemaRegistryResource
from resources.spark import SparkResource, SparkUnavailableError

pytestmark = [pytest.mark.broker, pytest.mark.spark]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (KafkaUnavailableError("broker down"), True),
        (SparkUnavailableError("server down"), True),
        (ContractError("contracts/x.yaml: bad"), False),
        (ValueError("a value that does not decode"), False),
    ],
)
def test_only_transient_failures_request_a_retry(error, transient):
    with pytest.raises(Exception) as raised, retries.retry_transient_failures():
        raise error
    if transient:
        assert type(raised.value).__name__ == "RetryRequested" and raised.value.__cause__ is error
        assert raised.value.max_retries == retries.MAX_RETRIES
    else:
        assert raised.value is error


def assert_retried_then_failed_naming(result, endpoint: str) -> None:
    assert not result.success
    retried = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retried) == retries.MAX_RETRIES
    [failure] = result.get_step_failure_events()
    error = str(failure.step_failure_data.error)
    assert endpoint in error and "did not answer" in error, error


def test_landing_retries_an_unreachable_broker_then_fails_naming_it(lake, monkeypatch):
    monkeypatch.setattr(retries, "SECONDS_BETWEEN_RETRIES", 0)
    contract = next(c for c in load_contracts() if c.name == "customers")
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = materialize(
        [build_landing_asset(contract)],
        resources={
            "kafka": KafkaResource(bootstrap_servers=nowhere, request_timeout_s=2),
            "lake": lake,
            "schema_registry": SchemaRegistryResource(),
        },
        raise_on_error=False,
    )
    assert_retried_then_failed_naming(result, nowhere)
    assert lake.table("landing", "customers") is None, "nothing may be landed from a broker that never answered"


def test_current_retries_an_unreachable_spark_server_then_fails_naming_it(lake, monkeypatch):
    monkeypatch.setattr(retries, "SECONDS_BETWEEN_RETRIES", 0)
    contract = next(c for c in load_contracts() if c.name == "customers")
    nowhere = f"sc://127.0.0.1:{free_port()}"
    result = materialize(
        [build_current_asset(contract)],
        partition_key="2026-01-01-00:00",
        resources={"lake": lake, "spark": SparkResource(remote=nowhere, connect_retries=1)},
        selection=[asset_key("current", contract)],
        raise_on_error=False,
    )
    assert_retried_then_failed_naming(result, nowhere)
