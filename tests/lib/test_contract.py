from pathlib import Path

import pytest
import yaml

from platform_assets.lib.contract import ContractError, load_contracts, parse_contract

pytestmark = pytest.mark.unit

VALID = {
    "name": "accounts",
    "owner": "ledger",
    "source": {"format": "json", "topic": "account-changes", "operation_field": "op"},
    "key": ["account_id"],
    "sequence": "version",
    "event_time": "changed_at",
    "fields": {
        "account_id": {"type": "string", "nullable": False},
        "balance": {"type": "double"},
        "holder": {"type": "string", "pii": "hash"},
        "changed_at": {"type": "timestamp"},
        "version": {"type": "long"},
    },
}


def with_changes(**changes):
    document = yaml.safe_load(yaml.safe_dump(VALID))
    document.update(changes)
    return document


def test_shipped_contracts_parse():
    contracts = {c.name: c for c in load_contracts()}
    assert set(contracts) == {"customers", "card_transactions"}
    customers = contracts["customers"]
    assert customers.source.topics == ("customer-create", "customer-update", "customer-delete")
    assert customers.key == ("customer_id",)
    assert customers.field("email").pii == "hash"
    assert customers.snapshot_url.endswith("/customers")
    assert contracts["card_transactions"].field("customer_id").subject == "customers"


def test_single_topic_with_operation_field_defaults_to_c_u_d():
    contract = parse_contract(VALID, "accounts.yaml")
    assert contract.source.topics == ("account-changes",)
    assert contract.source.operation_values == {"c": "create", "u": "update", "d": "delete"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key": []}, "missing `key`"),
        ({"key": ["nope"]}, "key field `nope` is not declared"),
        ({"sequence": "missing"}, "sequence field `missing` is not declared"),
        ({"event_time": "balance"}, "event_time field `balance` must have type timestamp"),
        ({"name": "Bad-Name"}, "must be snake_case"),
        ({"source": {"format": "xml", "topic": "t"}}, "source format `xml` is not supported"),
        ({"source": {"format": "json"}}, "exactly one of"),
        ({"fields": {**VALID["fields"], "_internal": {"type": "string"}}}, "reserved for platform columns"),
        ({"fields": {**VALID["fields"], "x": {"type": "decimal"}}}, "has type `decimal`"),
        (
            {"fields": {**VALID["fields"], "balance": {"type": "double", "pii": "hash"}}},
            "applies to string fields",
        ),
        (
            {"fields": {**VALID["fields"], "holder": {"type": "string", "pii": "mask", "subject": "people"}}},
            "an erasure could not find its rows",
        ),
    ],
)
def test_invalid_contracts_name_the_file_and_the_fix(changes, message):
    with pytest.raises(ContractError) as error:
        parse_contract(with_changes(**changes), "contracts/accounts.yaml")
    assert message in str(error.value)
    assert "contracts/accounts.yaml" in str(error.value)


def test_duplicate_entity_names_are_refused(tmp_path: Path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(VALID))
    with pytest.raises(ContractError, match="already defined"):
        load_contracts(tmp_path)


@pytest.mark.parametrize(
    ("people_key", "message"),
    [(None, "which no contract defines"), (["first", "last"], "whose key has 2 fields")],
)
def test_a_subject_field_must_name_an_entity_with_a_one_field_key(tmp_path: Path, people_key, message):
    accounts = with_changes(fields={**VALID["fields"], "holder": {"type": "string", "subject": "people"}})
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(accounts))
    if people_key is not None:
        people_fields = {name: {"type": "string"} for name in people_key}
        people = with_changes(
            name="people",
            source={**VALID["source"], "topic": "people-changes"},
            key=people_key,
            fields={**people_fields, "changed_at": {"type": "timestamp"}, "version": {"type": "long"}},
        )
        (tmp_path / "people.yaml").write_text(yaml.safe_dump(people))
    with pytest.raises(ContractError) as error:
        load_contracts(tmp_path)
    assert message in str(error.value) and "accounts.yaml" in str(error.value) and "`holder`" in str(error.value)


def test_environment_references_in_snapshot_url(monkeypatch):
    monkeypatch.setenv("LEDGER_URL", "http://ledger:8080")
    contract = parse_contract(with_changes(snapshot={"url": "${LEDGER_URL}/accounts"}))
    assert contract.snapshot_url == "http://ledger:8080/accounts"
    monkeypatch.delenv("LEDGER_URL")
    defaulted = parse_contract(with_changes(snapshot={"url": "${LEDGER_URL:-http://localhost:1}/accounts"}))
    assert defaulted.snapshot_url == "http://localhost:1/accounts"


@pytest.mark.parametrize("days", [0, -3, "30", True])
def test_tombstone_retention_is_a_whole_number_of_days(days):
    with pytest.raises(ContractError, match="`tombstone_retention_days` is"):
        parse_contract(with_changes(tombstone_retention_days=days), "contracts/accounts.yaml")
    assert parse_contract(with_changes(tombstone_retention_days=30)).tombstone_retention_days == 30
    assert parse_contract(VALID).tombstone_retention_days is None
