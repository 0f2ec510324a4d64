"""Schedules that run unattended: every hour the hour that just closed, every day the day that just closed.

Landing is driven by the lag sensor; these schedules make sure each closed hour and day is processed
once more after it closed, whatever the sensor saw, so late-arriving records of the hour are in.
"""

from datetime import timedelta

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from platform_assets.jobs import daily_job, hourly_job
from platform_assets.partitions import day_key, hour_key


@schedule(
    cron_schedule="10 * * * *",
    job=hourly_job,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Decode and merge the hour that closed (raw, quarantine, current of every entity).",
)
def hourly_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    closed = context.scheduled_execution_time - timedelta(hours=1)
    key = hour_key(closed)
    return RunRequest(run_key=f"hourly:{key}", partition_key=key, tags={"layer": "current", "trigger": "schedule"})


@schedule(
    cron_schedule="30 0 * * *",
    job=daily_job,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Recompute history for the day that closed (and the day before it) and rebuild its marts.",
)
def daily_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    key = day_key(context.scheduled_execution_time - timedelta(days=1))
    return RunRequest(run_key=f"daily:{key}", partition_key=key, tags={"layer": "history", "trigger": "schedule"})
