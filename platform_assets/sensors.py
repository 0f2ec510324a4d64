"""Sensors that keep the platform up to date without anyone watching.

The lag sensor of an entity requests a landing run when its consumer group falls behind (lag above a
threshold, or the oldest pending record older than a maximum delay), and, after each landing run,
requests `raw`, `current` and `scd2` for exactly the event hours that run touched, late hours included. The
history sensor then requests the days whose hours changed, onward to the newest day, so a late event
for an old day is never silently lost. The erasure sensor rebuilds the marts after an erasure, from
the first day that counted the erased rows. The schema registry sensor reports each new schema version
of an Avro entity's topic with the contract change that would adopt it, and starts no run. Sensors
commit nothing to Kafka: only a landing run that has written to Delta commits offsets. Their cursors
live in the Dagster instance and survive restarts.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import pyarrow.compute as pc
from dagster import (
    AssetKey,
    AssetObservation,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogRecord,
    JobDefinition,
    MetadataValue,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from platform_assets.entity import asset_key
from platform_assets.jobs import AUTOMATIC_PRIORITY, daily_job, hourly_job, landing_job
from platform_assets.landing import topic_key
from platform_assets.lib.contract import Contract
from platform_assets.lib.tables import AUDIT_SCHEMA
from platform_assets.partitions import (
    DAY_FORMAT,
    DEFAULT_PARTITIONS,
    HOUR_FORMAT,
    PARTITION_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    Partitions,
    range_tags,
)
from platform_assets.schema_changes import REGISTRY_FORMATS, propose, registered_schemas
from platform_assets.settings import PlatformSettings
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

DEFAULTS = PlatformSettings()
ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@dataclass
class Cursor:
    """What a sensor has already acted on: the storage id of the last materialization it handled, and
    (lag sensor) the touched hours no run covers yet, each with the time of the newest landing that
    touched it."""

    handled_storage_id: int = 0
    extra: dict = field(default_factory=dict)
    pending_hours: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def new_materializations(context: SensorEvaluationContext, key: AssetKey, after: int) -> list[EventLogRecord]:
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1000, ascending=True
    )
    return list(result.records)


def runs_in_flight(context: SensorEvaluationContext, entity: str, layer: str) -> bool:
    runs = context.instance.get_runs(
        RunsFilter(statuses=ACTIVE_STATUSES, tags={"entity": entity, "layer": layer}), limit=1
    )
    return bool(runs)


def touched_hours(records: list[EventLogRecord]) -> dict[str, float]:
    """The event hours the landing materializations touched, each with the time of the newest one."""
    hours: dict[str, float] = {}
    for record in records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization else {}
        for hour in metadata["event_hours"].value if "event_hours" in metadata else []:  # type: ignore[union-attr]
            hours[str(hour)] = max(hours.get(str(hour), 0.0), record.timestamp)
    return hours


@dataclass(frozen=True)
class HourlyRun:
    """An active hourly run of an entity: the hours it covers, and when it started (None: still waiting)."""

    first: str
    last: str
    started_at: float | None

    def covers(self, hour: str, landed_at: float) -> bool:
        """Whether the run will read what landed for `hour` at `landed_at`: its steps read landing only
        after the run starts, so a run that has not started, or started later, sees it."""
        return self.first <= hour <= self.last and (self.started_at is None or self.started_at > landed_at)


def active_hourly_runs(instance: DagsterInstance, entity: str) -> list[HourlyRun]:
    active = RunsFilter(statuses=ACTIVE_STATUSES, tags={"entity": entity, "layer": "current"})
    records = instance.get_run_records(active)
    runs = []
    for record in records:
        tags = record.dagster_run.tags
        first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
        if first is not None:
            runs.append(HourlyRun(first, tags.get(RANGE_END_TAG) or first, record.start_time))
    return runs


def build_lag_sensor(
    contract: Contract,
    lag_threshold: int = DEFAULTS.lag_threshold,
    max_delay_s: float = DEFAULTS.max_delay_s,
    interval_s: int = DEFAULTS.sensor_interval_s,
    partitions: Partitions = DEFAULT_PARTITIONS,
) -> SensorDefinition:
    """Keeps the queue short: one landing run at a time, and for the hours landing touched one range run
    (raw, quarantine, current, scd2) at a time waiting in the queue. Hours an active run will read are
    dropped; hours that arrive while a run waits are merged into the next request. Every tick records
    the lag and the oldest pending record's age on the landing asset, and says which rule decided."""
    landing_key = asset_key("landing", contract)
    hourly_selection = [asset_key(layer, contract) for layer in ("raw", "quarantine", "current", "scd2")]

    @sensor(
        name=f"lag_sensor_{contract.name}",
        description=f"Lands {contract.name} when its consumer lag or delay grows; then decodes and merges the "
        "hours that landing touched, in one range run.",
        minimum_interval_seconds=interval_s,
        jobs=[landing_job, hourly_job],
        default_status=DefaultSensorStatus.RUNNING,
    )
    def lag_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult:
        cursor = Cursor.parse(context.cursor)
        requests = []
        landed = new_materializations(context, landing_key, cursor.handled_storage_id)
        pending = dict(cursor.pending_hours)
        for hour, landed_at in touched_hours(landed).items():
            pending[hour] = max(pending.get(hour, 0.0), landed_at)
        outside = {hour for hour in pending if not partitions.hourly.has_partition_key(hour)}
        if outside:
            context.log.warning(
                f"{contract.name}: landed records with event hours outside the partitions ({sorted(outside)[:5]}); "
                "they stay in landing; check the producer's clock or PLATFORM_START"
            )
        runs = active_hourly_runs(context.instance, contract.name)
        pending = {
            hour: landed_at
            for hour, landed_at in pending.items()
            if hour not in outside and not any(run.covers(hour, landed_at) for run in runs)
        }
        newest_landing = landed[-1].storage_id if landed else cursor.handled_storage_id
        waiting = any(run.started_at is None for run in runs)
        if pending and not waiting:
            first, last = min(pending), max(pending)
            requests.append(
                RunRequest(
                    run_key=f"{contract.name}:{first}..{last}:{newest_landing}",
                    job_name=hourly_job.name,
                    asset_selection=hourly_selection,
                    tags={"entity": contract.name, "layer": "current", **range_tags(first, last), **AUTOMATIC_PRIORITY},
                )
            )
            pending = {}
        cursor.pending_hours, cursor.handled_storage_id = pending, newest_landing
        lags = kafka.lag(contract.name, contract.source.topics)
        lag = sum(partition.lag for partition in lags)
        delay = kafka.oldest_pending_age_s(contract.name, lags)
        reasons = [f"hourly run waiting; {len(pending)} hours held for the next request"] if pending else []
        if lag >= lag_threshold or (lag > 0 and delay >= max_delay_s):
            if runs_in_flight(context, contract.name, "landing"):
                reasons.append(f"landing run in flight (lag {lag}, oldest pending {delay:.0f} s)")
            else:
                requests.append(
                    RunRequest(
                        job_name=landing_job.name,
                        asset_selection=[landing_key],
                        tags={"entity": contract.name, "layer": "landing", "lag": str(lag), **AUTOMATIC_PRIORITY},
                    )
                )
        elif lag == 0:
            reasons.append("nothing to land (lag 0)")
        else:
            reasons.append(
                f"lag {lag} below threshold {lag_threshold} and oldest pending {delay:.0f} s below {max_delay_s:.0f} s"
            )
        # Numeric metadata on landing, every tick: the asset's page plots lag and delay over time.
        observation = AssetObservation(
            asset_key=landing_key,
            metadata={"consumer_lag": lag, "oldest_pending_age_s": round(delay, 1), "hours_held": len(pending)},
        )
        return SensorResult(
            run_requests=requests,
            skip_reason=None if requests else f"{contract.name}: " + "; ".join(reasons),
            cursor=cursor.dump(),
            asset_events=[observation],
        )

    return lag_sensor


def newest_partition(instance: DagsterInstance, keys: Iterable[AssetKey]) -> str | None:
    """The newest partition any of the assets was materialized for (partition keys sort by time)."""
    newest = [
        event.asset_materialization.partition
        for key in keys
        if (event := instance.get_latest_materialization_event(key)) and event.asset_materialization
    ]
    return max((partition for partition in newest if partition), default=None)


def failed_upstream_checks(
    context: SensorEvaluationContext, keys: Sequence[AssetKey], rerun: Sequence[AssetKey] = ()
) -> list[str]:
    """Blocking checks upstream of `keys` (other than those of `rerun`, which the run evaluates again)
    whose latest evaluation failed: what a run started now would build on. Outside a code location,
    as in unit tests, there is no asset graph to follow."""
    graph = context.repository_def.asset_graph if context.repository_def else None
    if graph is None or not keys:
        return []
    upstream = set().union(*(graph.get_ancestor_asset_keys(key) for key in keys)) - {*keys, *rerun}
    check_keys = [k for k in graph.asset_check_keys if k.asset_key in upstream and graph.get_check_spec(k).blocking]
    summaries = context.instance.event_log_storage.get_asset_check_summary_records(check_keys)
    return sorted(
        f"{key.asset_key.to_user_string()}:{key.name}"
        for key, summary in summaries.items()
        if summary.last_completed_check_execution_record is not None
        and summary.last_completed_check_execution_record.status == AssetCheckExecutionRecordStatus.FAILED
    )


def build_history_sensor(
    contract: Contract,
    marts_keys: Sequence[AssetKey] = (),
    interval_s: int = DEFAULTS.sensor_interval_s,
    partitions: Partitions = DEFAULT_PARTITIONS,
) -> SensorDefinition:
    current_key, history_key = asset_key("current", contract), asset_key("history", contract)

    @sensor(
        name=f"history_sensor_{contract.name}",
        description=f"Recomputes the {contract.name} history days (and the marts) whose hours changed in "
        "`current`, onward to the newest day, so late events reach every later day; never past a failed "
        "blocking check upstream.",
        minimum_interval_seconds=interval_s,
        job=daily_job,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def history_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        cursor = Cursor.parse(context.cursor)
        if runs_in_flight(context, contract.name, "history"):
            return SkipReason(f"a history run of {contract.name} is in flight; waiting for it")
        merged = new_materializations(context, current_key, cursor.handled_storage_id)
        days = {datetime.strptime(r.partition_key, HOUR_FORMAT).strftime(DAY_FORMAT) for r in merged if r.partition_key}
        if not days:
            return SkipReason(f"no new {contract.name} hours in current")
        blocked = failed_upstream_checks(context, [history_key])
        if blocked:
            # Not handled: once a rerun passes the checks, the next tick requests these days.
            return SkipReason(f"{contract.name} history waits: blocking checks failed upstream: {', '.join(blocked)}")
        # Marts read every entity: they wait while any of their upstream blocking checks fails.
        marts_blocked = failed_upstream_checks(context, marts_keys, rerun=[history_key])
        if marts_blocked:
            context.log.warning(f"marts not rebuilt: blocking checks failed upstream: {', '.join(marts_blocked)}")
        newest_day = newest_partition(context.instance, [history_key])
        last = max(days | ({newest_day} if newest_day else set()))
        first = min(days)
        request = RunRequest(
            run_key=f"{contract.name}:history:{merged[-1].storage_id}",
            job_name=daily_job.name,
            asset_selection=[history_key, *([] if marts_blocked else marts_keys)],
            tags={
                "entity": contract.name,
                "layer": "history",
                **range_tags(first, min(last, partitions.daily.get_last_partition_key() or last)),
                **AUTOMATIC_PRIORITY,
            },
        )
        cursor.handled_storage_id = merged[-1].storage_id
        return SensorResult(run_requests=[request], cursor=cursor.dump())

    return history_sensor


def build_erasure_marts_sensor(
    erasure_job: JobDefinition, marts_keys: Sequence[AssetKey], interval_s: int = DEFAULTS.sensor_interval_s
) -> SensorDefinition:
    """After an erasure succeeds, rebuild the marts from the first day that counted the erased rows,
    so no aggregate keeps counting the person (the marts hold no keys to delete)."""

    @run_status_sensor(
        name="erasure_marts_sensor",
        description="Rebuilds the KPI marts after an erasure, from the first day that counted the erased rows.",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[erasure_job],
        request_job=daily_job,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def erasure_marts_sensor(context: RunStatusSensorContext, lake: LakeResource) -> RunRequest | SkipReason:
        run_id = context.dagster_run.run_id
        audits = lake.read("audit", "erasures", schema=AUDIT_SCHEMA).filter(pc.field("request_id") == run_id)
        first = min((day for day in audits.column("marts_from_day").to_pylist() if day is not None), default=None)
        last = newest_partition(context.instance, marts_keys)
        if first is None or last is None or f"{first:%Y-%m-%d}" > last:
            return SkipReason(f"erasure {run_id}: no marts day counted the erased rows")
        return RunRequest(
            run_key=f"erasure:{run_id}",
            asset_selection=list(marts_keys),
            tags={"layer": "marts", **range_tags(f"{first:%Y-%m-%d}", last), **AUTOMATIC_PRIORITY},
        )

    return erasure_marts_sensor


def build_schema_registry_sensor(
    contracts: Sequence[Contract], interval_s: int = DEFAULTS.sensor_interval_s
) -> SensorDefinition:
    """Reports each new version of the value subject of an Avro (or Debezium) entity's topic, once:
    whether the contract could adopt it in place, and the change to its file that would, as an
    observation of the topic and in the tick's message. The cursor keeps the last version seen per
    subject; a topic with no subject (JSON) is passed over."""
    watched = [contract for contract in contracts if contract.source.format in REGISTRY_FORMATS]

    @sensor(
        name="schema_registry_sensor",
        description="Reports a new schema version registered for an entity's Avro topic, checked against the "
        "entity's contract, with the contract change that would adopt it (it starts no run).",
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def schema_registry_sensor(
        context: SensorEvaluationContext, schema_registry: SchemaRegistryResource
    ) -> SensorResult | SkipReason:
        if schema_registry.url is None:
            return SkipReason("no schema registry configured (SCHEMA_REGISTRY_URL): Avro subjects are not watched")
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        observations, reports = [], []
        for contract in watched:
            [topic] = contract.source.topics
            schemas = registered_schemas(schema_registry, topic)
            if schemas is None or seen.get(schemas[0].subject) == schemas[0].version:
                continue
            value, key = schemas
            seen[value.subject] = value.version
            proposal = propose(contract, value, key)
            message = proposal.message()
            if not proposal.reportable:
                context.log.info(message)
                continue
            (context.log.info if proposal.compatible else context.log.warning)(message)
            reports.append(message)
            observations.append(
                AssetObservation(
                    asset_key=topic_key(topic),
                    metadata={
                        "entity": contract.name,
                        "subject": value.subject,
                        "schema_version": value.version,
                        "schema_id": value.schema_id,
                        "compatible": proposal.compatible,
                        "contract_change": MetadataValue.md(f"{message}\n\n```diff\n{proposal.diff()}```"),
                    },
                )
            )
        return SensorResult(
            skip_reason="\n".join(reports) or "no new schema version differs from its contract",
            cursor=json.dumps(seen, sort_keys=True),
            asset_events=observations,
        )

    return schema_registry_sensor
