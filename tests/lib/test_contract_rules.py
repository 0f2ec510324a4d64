"""Every contract name and setting is checked when the contracts load; a mistake names the file, the key and
the fix. Names must be ones every engine reads as plain column and table names."""

from pathlib import Path

import pytest
import yaml

from platform_assets.lib.contract import ContractError, load_contracts, parse_contract
from platform_assets.lib.pii import PiiKeyError, pii_key

pytestmark = pytest.mark.unit

VALID = {
    "name": "accounts",
    "source": {"format": "json", "topic": "account-changes", "operation_field": "op"},
    "key": ["account_id"],
    "sequence": "version",
    "event_time": "changed_at",
    "fields": {
        "account_id": {"type": "string", "nullable": False},
        "changed_at": {"type": "timestamp"},
        "version": {"type": "long"},
    },
}


def changed(**changes) -> dict:
    document = yaml.safe_load(yaml.safe_dump(VALID))
    document.update(changes)
    return document


def source(**changes) -> dict:
    return {**VALID["source"], **changes}


LONG = "a" * 64


def refused(document: dict) -> str:
    with pytest.raises(ContractError) as error:
        parse_contract(document, "contracts/accounts.yaml")
    message = str(error.value)
    assert "contracts/accounts.yaml" in message
    return message


@pytest.mark.parametrize("field", ["first-name", "FirstName", "1st", "true", "null", "current_date", LONG, "é"])
def test_a_field_name_engines_would_misread_is_refused_naming_the_key_and_the_rule(field):
    message = refused(changed(fields={**VALID["fields"], field: {"type": "string"}}))
    assert f"`fields.{field}`" in message
    assert "^[a-z][a-z0-9_]*$" in message or "reserved" in message or "63" in message


def test_a_key_that_is_sql_is_refused_before_it_reaches_a_predicate():
    message = refused(changed(key=["id = id OR true OR id"]))
    assert "`key`" in message and "`id = id OR true OR id`" in message and "^[a-z][a-z0-9_]*$" in message


@pytest.mark.parametrize("role", ["sequence", "event_time"])
def test_sequence_and_event_time_names_follow_the_rule(role):
    message = refused(changed(**{role: "x; drop table raw"}))
    assert f"`{role}`" in message and "^[a-z][a-z0-9_]*$" in message


@pytest.mark.parametrize("name", ["first-name", "true", LONG])
def test_an_entity_name_follows_the_rule(name):
    message = refused(changed(name=name))
    assert "`name`" in message


def test_reserved_names_are_listed_with_the_fix():
    message = refused(changed(fields={**VALID["fields"], "true": {"type": "string"}}))
    assert "reserved" in message and "rename" in message


@pytest.mark.parametrize(
    ("document", "key", "fix"),
    [
        (changed(source=source(max_value_bytes="lots")), "source.max_value_bytes", "whole number of bytes"),
        (changed(source=source(max_value_bytes=0)), "source.max_value_bytes", "whole number of bytes"),
        (changed(quality={"max_quarantine_rate": "high"}), "quality.max_quarantine_rate", "between 0 and 1"),
        (changed(quality={"max_quarantine_rate": 5}), "quality.max_quarantine_rate", "between 0 and 1"),
        (changed(quality={"max_row_count_change": "big"}), "quality.max_row_count_change", "0.5 for 50%"),
        (changed(quality={"freshness_hours": "soon"}), "quality.freshness_hours", "whole number of hours"),
        (changed(quality={"expectations": {"a": 1}}), "quality.expectations", "list"),
        (changed(quality={"max_quarantine": 0.1}), "quality", "max_quarantine_rate"),
        (changed(source=source(operation_values=["c", "u"])), "source.operation_values", "{I: create"),
        (changed(source=source(operation_values={"I": "insert"})), "source.operation_values", "create, update"),
        (changed(source=source(topic="")), "source.topic", "Kafka topic name"),
        (changed(source=source(topic="has space")), "source.topic", "Kafka topic name"),
        (changed(source=source(topic="_snapshot.accounts")), "source.topic", "reserved"),
        (changed(source={"format": "json", "topics": {"create": ""}}), "source.topics.create", "Kafka topic name"),
        (
            changed(source={"format": "json", "topics": {"create": "a", "update": "a"}}),
            "source.topics",
            "operation_field",
        ),
        (changed(source=source(formt="json")), "source", "format"),
    ],
)
def test_a_wrong_setting_names_the_file_the_key_and_the_fix(document, key, fix):
    with pytest.raises(ContractError) as error:
        parse_contract(document, "contracts/accounts.yaml")
    message = str(error.value)
    assert "contracts/accounts.yaml" in message and f"`{key}`" in message and fix in message


def test_one_topic_in_two_contracts_is_refused_naming_both_files(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(VALID))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(changed(name="ledger")))
    with pytest.raises(ContractError) as error:
        load_contracts(tmp_path)
    message = str(error.value)
    assert "a.yaml" in message and "b.yaml" in message and "`account-changes`" in message


@pytest.mark.parametrize("mode", ["prod", "dev"])
def test_a_pii_key_shorter_than_32_characters_is_refused(monkeypatch, mode):
    monkeypatch.setenv("PLATFORM_MODE", mode)
    monkeypatch.setenv("PLATFORM_PII_KEY", "x" * 31)
    with pytest.raises(PiiKeyError, match=r"31 characters.*at least 32"):
        pii_key()
    monkeypatch.setenv("PLATFORM_PII_KEY", "x" * 32)
    assert pii_key() == b"x" * 32
