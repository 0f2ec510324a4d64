"""The dbt project on its own: its unit tests of the KPI logic pass (and catch a broken KPI), and every
model passes sqlfluff. dbt runs on a small lake of real, empty Delta tables with the platform's layouts,
through Spark Connect on an embedded Sail server, as the marts asset runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platform_assets.lib.contract import load_contracts
from platform_assets.lib.tables import current_schema, history_schema, raw_schema
from platform_assets.marts import spark_connect_address
from resources.spark import embedded_sail_remote

pytestmark = pytest.mark.dbt

ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = ROOT / "dbt"
BIN = Path(sys.executable).parent
DBT = str(BIN / "dbt")
SQLFLUFF = str(BIN / "sqlfluff")

# Every unit test of the project, by model: a test that is renamed, dropped or not selected fails here.
UNIT_TESTS = {
    "stg_customer_changes_counts_a_duplicated_change_once": "stg_customer_changes",
    "customer_kpis_daily_counts_each_customer_once_per_kind_and_day": "customer_kpis_daily",
    "customer_kpis_daily_keeps_days_with_only_changes_or_only_actives": "customer_kpis_daily",
    "card_spend_hourly_sums_and_counts_per_hour": "card_spend_hourly",
    "card_spend_daily_by_city_uses_the_city_at_the_end_of_the_day": "card_spend_daily_by_city",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dbt-project")


@pytest.fixture(scope="module")
def dbt_env(workdir: Path) -> dict[str, str]:
    """A lake with every table the dbt sources read, and the environment dbt needs to use it.

    The tables are real Delta tables with the layouts of `platform_assets.lib.tables`, so the staging
    views (and the sources' columns that unit-test fixtures are typed from) bind as they do in production.
    """
    from deltalake import write_deltalake

    lake = workdir / "lake"
    contracts = {c.name: c for c in load_contracts(ROOT / "contracts")}
    for entity in ("customers", "card_transactions"):
        contract = contracts[entity]
        for layer, schema in (
            ("raw", raw_schema(contract)),
            ("current", current_schema(contract)),
            ("history", history_schema(contract)),
        ):
            write_deltalake(str(lake / layer / entity), schema.empty_table(), mode="overwrite")
    host, port = spark_connect_address(embedded_sail_remote())
    return {
        **os.environ,
        "PLATFORM_LAKE_ROOT": str(lake),
        "PLATFORM_MARTS_ROOT": str(workdir / "marts"),
        "SPARK_CONNECT_HOST": host,
        "SPARK_CONNECT_PORT": str(port),
        "DBT_LOG_PATH": str(workdir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dbt(args: list[str], env: dict[str, str], target_path: Path, project_dir: Path = DBT_DIR) -> dict:
    """Runs dbt in `project_dir` (private target path, so the code location's dbt/target is untouched) and
    returns its run_results.json."""
    command = [DBT, *args, "--profiles-dir", ".", "--target", "sail", "--target-path", str(target_path)]
    done = subprocess.run(command, cwd=project_dir, env=env, capture_output=True, text=True, timeout=120)
    results_file = target_path / "run_results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"results": []}
    results["returncode"] = done.returncode
    results["output"] = done.stdout[-5000:] + done.stderr[-2000:]
    return results


def unit_test_statuses(results: dict) -> dict[str, str]:
    return {
        r["unique_id"].rsplit(".", 1)[-1]: r["status"]
        for r in results["results"]
        if r["unique_id"].startswith("unit_test.")
    }


# Unit-test fixtures for ref() inputs are typed from the upstream relations, so the staging views are built
# in the same dbt invocation (Sail's catalog lives as long as one Spark Connect session, i.e. one invocation),
# and `dbt build` runs a model's unit tests only when it builds the model: the models (on the empty lake) and
# their unit tests, without the data tests.
UNIT_TESTS_AND_THEIR_MODELS = ["build", "--exclude", "test_type:data"]
MODELS = {
    f"model.platform_marts.{m}"
    for m in ("stg_customer_changes", "stg_customers_daily", "stg_card_transactions", *set(UNIT_TESTS.values()))
}


def test_every_kpi_unit_test_runs_and_passes(dbt_env, workdir):
    results = dbt(UNIT_TESTS_AND_THEIR_MODELS, dbt_env, workdir / "target")
    assert results["returncode"] == 0, results["output"]
    assert unit_test_statuses(results) == dict.fromkeys(UNIT_TESTS, "pass"), results["output"]
    # Each on its model, and nothing else (but the models and the on-run-start hook) was selected.
    assert {r["unique_id"] for r in results["results"] if not r["unique_id"].startswith("operation.")} == {
        f"unit_test.platform_marts.{model}.{name}" for name, model in UNIT_TESTS.items()
    } | MODELS
    assert {r["status"] for r in results["results"] if r["unique_id"] in MODELS} == {"success"}


def test_a_unit_test_catches_a_broken_kpi(dbt_env, workdir):
    """A copy of the project whose customer KPIs count every change instead of every customer once."""
    project = workdir / "broken"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = project / "models" / "marts" / "customer_kpis_daily.sql"
    counted_once = "count(distinct case when operation = 'update'"
    sql = model.read_text()
    assert counted_once in sql
    model.write_text(sql.replace(counted_once, "count(case when operation = 'update'"))

    catching = "customer_kpis_daily_counts_each_customer_once_per_kind_and_day"
    siblings = [name for name, tested in UNIT_TESTS.items() if tested == UNIT_TESTS[catching] and name != catching]
    # Once a unit test of a model fails, dbt build skips that model's unit tests it has not run yet, in an
    # order of its choosing: the catching test runs without its siblings, and the siblings without it.
    caught = dbt([*UNIT_TESTS_AND_THEIR_MODELS, *siblings], dbt_env, workdir / "broken-target", project_dir=project)
    assert caught["returncode"] != 0
    expected = {name: "fail" if name == catching else "pass" for name in UNIT_TESTS if name not in siblings}
    assert unit_test_statuses(caught) == expected, caught["output"]
    rest = dbt([*UNIT_TESTS_AND_THEIR_MODELS, catching], dbt_env, workdir / "sibling-target", project_dir=project)
    assert unit_test_statuses(rest) == {name: "pass" for name in UNIT_TESTS if name != catching}, rest["output"]


def test_every_model_passes_sqlfluff(dbt_env, workdir):
    env = {**dbt_env, "DBT_TARGET_PATH": str(workdir / "lint-target")}
    done = subprocess.run(
        [SQLFLUFF, "lint", "models", "--format", "json", "--nofail"],
        cwd=DBT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = {entry["filepath"]: entry for entry in json.loads(done.stdout)}
    models = {str(p.relative_to(DBT_DIR)) for p in (DBT_DIR / "models").rglob("*.sql")}
    assert set(report) == models
    # The dbt templater skips (with only a warning) a model it cannot compile: that is no pass.
    unparsed = [path for path, entry in report.items() if not entry["statistics"]["segments"]]
    assert not unparsed, f"sqlfluff could not compile {unparsed}: {done.stderr[-3000:]}"
    violations = [
        f"{path}:{v['start_line_no']}:{v['start_line_pos']} {v['code']} {v['description']}"
        for path, entry in report.items()
        for v in entry["violations"]
    ]
    assert not violations, "\n".join(violations)
