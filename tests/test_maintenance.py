"""Table maintenance compacts every lake table without changing its rows, types or landing transactions,
and its vacuum keeps the files recent versions need."""

from __future__ import annotations

import pyarrow as pa
import pytest

from platform_assets.lib.contract import load_contracts
from platform_assets.maintenance import TABLE_WRITERS, build_maintenance_job

pytestmark = pytest.mark.unit

APPENDS = 6


def small_appends(lake, layer: str, entity: str) -> pa.Table:
    """APPENDS one-row commits (as hourly runs leave them); the landing ones record app transactions."""
    for i in range(APPENDS):
        rows = pa.table({"id": pa.array([f"k{i}"], pa.string()), "value": pa.array([bytes([i])], pa.binary())})
        transactions = {f"{entity}-topic-0": i} if layer == "landing" else None
        lake.append(layer, entity, rows, app_transactions=transactions)
    return lake.read(layer, entity)


def test_every_table_is_compacted_keeping_rows_types_transactions_and_recent_versions(lake):
    contracts = [c for c in load_contracts() if c.name == "customers"]
    before = {layer: small_appends(lake, layer, "customers") for layer in TABLE_WRITERS}
    versions_before = {layer: lake.version(layer, "customers") for layer in TABLE_WRITERS}

    result = build_maintenance_job(contracts).execute_in_process(resources={"lake": lake})

    assert result.success
    for layer, rows in before.items():
        table = lake.table(layer, "customers")
        assert len(table.file_uris()) == 1, f"{layer}: the small files are compacted into one"
        after = lake.read(layer, "customers")
        assert after.schema == rows.schema, f"{layer}: column types unchanged"
        assert after.sort_by("id").to_pylist() == rows.sort_by("id").to_pylist()
        # Files of the versions before compaction are younger than the retention: still readable.
        table.load_as_version(versions_before[layer])
        assert table.to_pyarrow_dataset().to_table().num_rows == APPENDS
    assert lake.transaction_version("landing", "customers", "customers-topic-0") == APPENDS - 1


def test_a_missing_table_is_skipped(lake):
    contracts = [c for c in load_contracts() if c.name == "customers"]
    assert build_maintenance_job(contracts).execute_in_process(resources={"lake": lake}).success


def test_a_retention_shorter_than_a_day_is_refused(lake):
    contracts = [c for c in load_contracts() if c.name == "customers"]
    small_appends(lake, "current", "customers")
    config = {"ops": {"maintain_current_customers": {"config": {"retention_hours": 1}}}}
    result = build_maintenance_job(contracts).execute_in_process(
        resources={"lake": lake}, run_config=config, raise_on_error=False
    )
    [failure] = result.get_step_failure_events()
    assert "retention_hours" in str(failure.step_failure_data.error)
    assert len(lake.table("current", "customers").file_uris()) == APPENDS, "nothing was rewritten"
