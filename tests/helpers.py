"""Helpers shared by the tests (fixtures live in conftest.py)."""

import pyarrow as pa

from platform_assets.partitions import range_tags


def run(defs, instance, job: str, first: str, last: str):
    """Run a job over a partition range in one run (as a single-run backfill does)."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), raise_on_error=False
    )


def mart_rows(lake, mart: str, sql: str = "select * from marts") -> list[tuple]:
    """Rows (tuples, in the model's column order) of a published mart, the Delta table `<lake>/marts/<mart>`,
    queried as `marts`."""
    table = lake.select("marts", mart, sql)
    assert table is not None, f"mart {mart} is not published in {lake.uri('marts', mart)}"
    return [tuple(row.values()) for row in pa.table(table).to_pylist()]
