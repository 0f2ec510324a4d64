"""Entity, field and key names every engine reads as plain column and table names, refused otherwise."""

import pytest
import yaml

from platform_assets.lib.contract import ContractError, parse_contract

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
LONG = "a" * 64


def refused(document: dict) -> str:
    with pytest.raises(ContractError) as error:
        parse_contract(document, "contracts/accounts.yaml")
    message = str(error.value)
    assert "contracts/accounts.yaml" in message
    return message


def changed(**changes) -> dict:
    document = yaml.safe_load(yaml.safe_dump(VALID))
    document.update(changes)
    return document


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
