"""Right to erasure: a customer erased after a multi-day run is found nowhere, not in old table
versions, and not after a rebuild from the archive or a replay of their events from Kafka."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from helpers import run

from platform_assets.erasure import AUDIT_SCHEMA, KEYED_LAYERS, find_keys
from platform_assets.partitions import hour_key
from simulator.source import Rates

START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 36


@pytest.fixture(scope="module")
def stack(platform_stack):
    stack = platform_stack(Rates(creates=5, updates=8, deletes=1, transactions=6, late_share=0.02), seed=9)
    for hour in range(HOURS):
        stack.publish(stack.source.hour(START + timedelta(hours=hour)))
    stack.publish(stack.source.flush_late())
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    assert run(
        stack.defs, stack.instance, "hourly_job", hour_key(START), hour_key(START + timedelta(hours=HOURS - 1))
    ).success
    assert run(stack.defs, stack.instance, "daily_job", "2026-01-01", "2026-01-02").success
    return stack


def test_an_erased_customer_is_found_nowhere_even_after_a_rebuild_and_a_replay(stack):
    contract = next(c for c in stack.contracts if c.name == "customers")
    changes = [e for e in stack.source.changes if e.topic.startswith("customer-")]
    person = next(e.key for e in changes if e.topic == "customer-update" and e.key in stack.source.customers)
    assert find_keys(contract, [person], stack.lake), "the test customer must exist before the erasure"

    erased = stack.defs.resolve_job_def("erasure_job").execute_in_process(
        instance=stack.instance,
        run_config={"ops": {"erase_keys": {"config": {"entity": "customers", "keys": [person], "retention_hours": 0}}}},
    )
    assert erased.success
    assert find_keys(contract, [person], stack.lake) == {}

    [audit] = stack.lake.read("audit", "erasures", schema=AUDIT_SCHEMA).to_pylist()
    removed = json.loads(audit["rows_removed"])
    assert audit["verified"] and audit["entity"] == "customers" and audit["keys"] == 1
    assert removed["landing"] >= 2 and removed["raw"] >= 2 and removed["current"] == 1 and removed["history"] >= 1
    assert person not in json.dumps({k: str(v) for k, v in audit.items()}), "the audit must not hold the key"

    # A rebuild from the archive does not bring the person back.
    for layer in ("quarantine", *KEYED_LAYERS):
        for entity in ("customers", "card_transactions"):
            shutil.rmtree(stack.lake.uri(layer, entity))
    assert run(
        stack.defs, stack.instance, "hourly_job", hour_key(START), hour_key(START + timedelta(hours=HOURS - 1))
    ).success
    assert run(stack.defs, stack.instance, "daily_job", "2026-01-01", "2026-01-02").success
    assert find_keys(contract, [person], stack.lake) == {}

    # Nor does a replay of their old events from Kafka: the erasure list is honoured when decoding.
    replayed = [e for e in changes if e.key == person]
    stack.publish(replayed)
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    hours = sorted({hour_key(e.event_time) for e in replayed})
    for hour in hours:
        assert run(stack.defs, stack.instance, "hourly_job", hour, hour).success
    raw_rows = stack.lake.read("raw", "customers").to_pylist()
    assert person not in {r["customer_id"] for r in raw_rows}
    current = stack.lake.read("current", "customers").to_pylist()
    assert person not in {r["customer_id"] for r in current}


def test_the_command_line_erases_and_audits(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from resources.lake import LakeResource

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "PLATFORM_LAKE_ROOT": str(tmp_path / "lake")}
    done = subprocess.run(
        [sys.executable, "-m", "platform_assets.erasure", "--entity", "customers", "--key", "C999999"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["verified"] and printed["entity"] == "customers"
    [audit] = LakeResource(root=str(tmp_path / "lake")).read("audit", "erasures", schema=AUDIT_SCHEMA).to_pylist()
    assert audit["request_id"] == printed["request_id"]
