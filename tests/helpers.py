"""Helpers shared by the tests (fixtures live in conftest.py)."""

from platform_assets.partitions import range_tags


def run(defs, instance, job: str, first: str, last: str):
    """Run a job over a partition range in one run (as a single-run backfill does)."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), raise_on_error=False
    )
