"""Helpers shared by the tests (fixtures live in conftest.py)."""


def run(defs, instance, job: str, first: str, last: str):
    """Run a job over a partition range in one run (as a single-run backfill does)."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags, raise_on_error=False)
