"""The one schedule: every day, the day that just closed.

Everything else is started by sensors (see sensors.py): landing when records wait, the hours each
landing touched, and the history days (and marts) whose hours changed. Those react to data; a day on
which an entity had no change at all would never be computed by them, so this schedule closes every
day once, for every entity, whatever happened.
"""

from datetime import timedelta

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from platform_assets.jobs import AUTOMATIC_PRIORITY, daily_job
from platform_assets.partitions import day_key


@schedule(
    cron_schedule="30 0 * * *",
    job=daily_job,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Recompute history for the day that closed (and the day before it) and rebuild its marts.",
)
def daily_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    key = day_key(context.scheduled_execution_time - timedelta(days=1))
    return RunRequest(
        run_key=f"daily:{key}",
        partition_key=key,
        tags={"layer": "history", "trigger": "schedule", **AUTOMATIC_PRIORITY},
    )
