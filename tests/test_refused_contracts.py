"""One team's broken contract takes no other entity off line, and is loud where engineers look."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DefaultSensorStatus, build_sensor_context

from platform_assets.definitions import build_definitions
from platform_assets.lib.contract import SHIPPED_CONTRACTS_DIR, ContractError, load_contracts, read_contracts

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = {
    "name": "accounts",
    "source": {"format": "json", "topic": "account-changes", "operation_field": "op"},
    "key": ["account_id"],
    "sequence": "version",
    "event_time": "changed_at",
    "fields": {
        "account_id": {"type": "string"},
        "first-name": {"type": "string"},
        "changed_at": {"type": "timestamp"},
        "version": {"type": "long"},
    },
}


@pytest.fixture
def contracts_dir(tmp_path: Path) -> Path:
    """The shipped contracts plus one team's broken contract and one file that is not YAML."""
    for path in SHIPPED_CONTRACTS_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(ACCOUNTS))
    (tmp_path / "ledger.yaml").write_text("name: ledger\nfields: [unclosed\n")
    return tmp_path


def test_the_valid_contracts_load_and_each_broken_file_is_refused_with_its_error(contracts_dir):
    contracts, refused = read_contracts(contracts_dir)
    assert {contract.name for contract in contracts} == {"customers", "card_transactions"}
    assert [Path(r.path).name for r in refused] == ["accounts.yaml", "ledger.yaml"]
    assert "`fields.first-name`" in refused[0].error and "accounts.yaml" in refused[0].error
    assert "not valid YAML" in refused[1].error
    with pytest.raises(ContractError, match=r"accounts\.yaml"):
        load_contracts(contracts_dir)


def test_a_contract_that_takes_another_teams_topic_is_refused_and_the_owner_keeps_it(tmp_path):
    customers = yaml.safe_load((SHIPPED_CONTRACTS_DIR / "customers.yaml").read_text())
    (tmp_path / "customers.yaml").write_text(yaml.safe_dump(customers))
    intruder = {**ACCOUNTS, "fields": {**ACCOUNTS["fields"]}, "source": {"format": "json", "topic": "customer-update"}}
    del intruder["fields"]["first-name"]
    (tmp_path / "intruder.yaml").write_text(yaml.safe_dump(intruder))
    contracts, [refused] = read_contracts(tmp_path)
    assert [contract.name for contract in contracts] == ["customers"]
    assert "intruder.yaml" in refused.error and "customer-update" in refused.error


def test_the_code_location_keeps_the_valid_chains_and_shows_each_refused_file(contracts_dir):
    contracts, refused = read_contracts(contracts_dir)
    defs = build_definitions(contracts, refused=refused)
    keys = set(defs.resolve_all_asset_keys())
    assert {AssetKey(["landing", "landing_customers"]), AssetKey(["current", "current_card_transactions"])} <= keys
    shown = defs.resolve_assets_def(AssetKey(["refused_contracts", "refused_accounts"])).specs_by_key[
        AssetKey(["refused_contracts", "refused_accounts"])
    ]
    assert "`fields.first-name`" in (shown.description or "")
    sensor = next(s for s in defs.sensors if s.name == "refused_contract_accounts")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    with pytest.raises(Exception, match="first-name"):
        sensor.evaluate_tick(build_sensor_context())
    assert AssetKey(["refused_contracts", "refused_ledger"]) in keys


def test_contracts_validate_fails_ci_listing_every_refused_file(contracts_dir):
    result = subprocess.run(
        [sys.executable, "-m", "cli", "contracts", "validate", str(contracts_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "accounts.yaml" in result.stderr and "ledger.yaml" in result.stderr
    assert "customers.yaml" in result.stdout
