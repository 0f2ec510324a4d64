"""Debezium streams as the connectors send them by default, through the real broker (3 partitions),
landing, raw, current and two days of history: nothing quarantined, every tombstone skipped, and
current and each history day equal to the source database's own state, replayed in log order.

The workload: an initial snapshot (op r, one shared position), updates of one key within one
transaction, deletes carrying only the key (PostgreSQL REPLICA IDENTITY DEFAULT: NOT NULL columns as
filler), updates without `before`, a re-create, a truncate, a MySQL binlog rotation, and a restart that
sends the last changes again with their original positions, after everything else."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from dagster import DagsterInstance, materialize
from debezium_envelopes import AVRO_BALANCE, Table, avro_envelope_schema, avro_key_schema, column

from platform_assets.current import build_current_asset
from platform_assets.entity import asset_key
from platform_assets.history import build_history_asset
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from resources.spark import SparkResource
from simulator.service import ensure_topics

pytestmark = [pytest.mark.broker, pytest.mark.spark]

DAYS = (datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 2, 10, tzinfo=UTC))
COLUMNS = [
    column("id", "int32", optional=False),
    column("name", "string", optional=False),  # NOT NULL: "" in a key-only delete
    column(
        "balance",
        "bytes",
        name="org.apache.kafka.connect.data.Decimal",
        version=1,
        parameters={"scale": "2", "connect.decimal.precision": "12"},
    ),
    column("updated_at", "int64", name="io.debezium.time.MicroTimestamp", version=1),
]
AVRO_COLUMNS = [
    {"name": "id", "type": "int"},
    {"name": "name", "type": "string"},
    AVRO_BALANCE,
    {
        "name": "updated_at",
        "type": ["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}],
        "default": None,
    },
]
FIELDS = {
    "id": {"type": "int", "nullable": False},
    "name": {"nullable": False},
    "balance": {"type": "decimal(12, 2)"},
    "updated_at": {"type": "timestamp"},
}


@dataclass(frozen=True)
class Event:
    """One change in the source's log, in log order: `step` makes its position."""

    step: int
    key: int | None  # None: a truncate
    op: str
    row: dict[str, Any] | None
    at: datetime


def source_log() -> list[Event]:
    """What happened in the database, in commit order, over two days."""
    events: list[Event] = []

    def change(key: int, op: str, name: str | None, at: datetime, balance: str = "10.00") -> None:
        row = None if name is None else {"id": key, "name": name, "balance": Decimal(balance), "updated_at": at}
        events.append(Event(len(events), key, op, row, at))

    first, second = DAYS
    for key in range(1, 7):
        change(key, "r", f"snap{key}", first)  # the initial snapshot: one position for all
    burst = first + timedelta(minutes=5)
    for n, balance in enumerate(("11.00", "12.50", "13.75")):  # one transaction: the same updated_at
        change(1, "u", f"one-{n}", burst, balance)
    change(2, "d", None, first + timedelta(minutes=10))
    change(3, "u", "three", first + timedelta(minutes=20), "1234567890.12")
    change(4, "d", None, first + timedelta(minutes=30))
    change(4, "c", "four-again", first + timedelta(minutes=40))
    events.append(Event(len(events), None, "t", None, first + timedelta(minutes=45)))  # TRUNCATE persons
    change(5, "c", "five-again", first + timedelta(minutes=50))
    change(6, "c", "six-again", first + timedelta(minutes=55))
    change(1, "c", "one-next-day", second)
    change(5, "d", None, second + timedelta(minutes=5))
    change(2, "c", "two-again", second + timedelta(minutes=10))
    change(6, "u", "six", second + timedelta(minutes=15), "-0.01")
    change(6, "d", None, second + timedelta(minutes=20))
    return events


def database_state(events: list[Event], until: datetime) -> dict[int, tuple]:
    """The table as the database held it at `until`: the reference, independent of the platform."""
    state: dict[int, tuple] = {}
    for event in events:
        if event.at >= until:
            continue
        if event.op == "t":
            state.clear()
        elif event.row is None:
            state.pop(event.key, None)
        else:
            state[event.key] = (event.row["name"], event.row["balance"], event.row["updated_at"])
    return state


@dataclass
class Connector:
    """How one connector writes `source_log()`: its contract's order, its positions, its converter."""

    name: str
    table: Table
    sequence: Any
    avro: bool = False

    def position(self, event: Event) -> dict[str, Any]:
        step = 0 if event.op == "r" else event.step  # snapshot rows share the snapshot's position
        if self.table.connector == "postgresql":
            return {"lsn": 23_043_592 + 8 * step, "txId": 490 + step}
        rotation = 12  # the binlog rotates: positions restart low in the next file
        if step < rotation:
            return {"file": "mysql-bin.000009", "pos": 98_000 + 300 * step, "row": 0}
        return {"file": "mysql-bin.000010", "pos": 4 + 300 * (step - rotation), "row": 0}

    def wire_row(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None or self.avro:
            return row if row is None else {**row, "updated_at": micros(row["updated_at"])}
        return {**row, "balance": connect_decimal(row["balance"], 2), "updated_at": micros(row["updated_at"])}

    def before_of_delete(self, event: Event, previous: dict[str, Any]) -> dict[str, Any] | None:
        """MySQL logs the whole old row; PostgreSQL under REPLICA IDENTITY DEFAULT only the key."""
        if self.table.connector == "mysql":
            return self.wire_row(previous)
        return {"id": event.key, "name": "", "balance": None, "updated_at": None}

    def records(self, events: list[Event]) -> list[tuple[dict | None, dict | None, int]]:
        """(key, envelope payload or None for a tombstone, Kafka timestamp) per record, in send order."""
        rows: dict[int, dict[str, Any]] = {}
        sent = []
        for event in events:
            ts_ms = int(event.at.timestamp() * 1000)
            snapshot = "true" if event.op == "r" else "false"
            if event.op == "t":  # sent with a null Kafka key
                payload = self.table.payload("t", None, None, ts_ms, **self.position(event))
                sent.append((None, payload, ts_ms + 250))
                rows.clear()
                continue
            if event.op == "d":
                before, after = self.before_of_delete(event, rows.pop(event.key)), None
            else:
                before, after = None, self.wire_row(event.row)  # updates without before: DEFAULT identity
                rows[event.key] = event.row  # type: ignore[assignment]
            payload = self.table.payload(event.op, before, after, ts_ms, snapshot, **self.position(event))
            sent.append(({"id": event.key}, payload, ts_ms + 250))
            if event.op == "d":
                sent.append(({"id": event.key}, None, ts_ms + 250))
        # The connector crashes and resends its last unflushed changes, tombstones included.
        restart = int((DAYS[1] + timedelta(minutes=50)).timestamp() * 1000)
        return sent + [(key, payload, restart) for key, payload, _ in sent[-6:]]


# Landing runs while the connector is still resending: key 6's update came again, its delete not yet.
FIRST_WAVE = -2


def connect_decimal(value: Decimal, scale: int) -> str:
    """Kafka Connect's Decimal in JSON: base64 of the unscaled value, big-endian two's complement."""
    unscaled = int(value.scaleb(scale))
    return base64.b64encode(unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)).decode()


def micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


CONNECTORS = [
    Connector("postgres_json", Table("postgresql", COLUMNS), "source.lsn"),
    Connector(
        "mysql_json",
        Table("mysql", COLUMNS, prefix="prefix", db="shop", version="2.4.2.Final"),
        ["source.file", "source.pos", "source.row"],
    ),
    Connector("postgres_avro", Table("postgresql", COLUMNS), "source.lsn", avro=True),
]


def produce(
    connector: Connector, broker: str, topic: str, registry: SchemaRegistryResource, records: list[tuple]
) -> None:
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    if connector.avro:
        namespace = connector.table.name_prefix
        value_serializer = AvroSerializer(registry.client(), json.dumps(avro_envelope_schema(namespace, AVRO_COLUMNS)))
        key_serializer = AvroSerializer(registry.client(), json.dumps(avro_key_schema(namespace)))
    for key, payload, timestamp in records:
        if connector.avro:
            key_bytes = None if key is None else key_serializer(key, SerializationContext(topic, MessageField.KEY))
            value = (
                None if payload is None else value_serializer(payload, SerializationContext(topic, MessageField.VALUE))
            )
        else:
            key_bytes = None if key is None else connector.table.key(**key)
            envelope = {"schema": connector.table.envelope_schema(), "payload": payload}
            value = None if payload is None else json.dumps(envelope).encode()
        producer.produce(topic, key=key_bytes, value=value, timestamp=timestamp)
    assert producer.flush(30) == 0


@pytest.mark.parametrize("connector", CONNECTORS, ids=[c.name for c in CONNECTORS])
def test_a_default_debezium_stream_lands_in_source_order(broker, tmp_path, connector):
    topic = f"{connector.table.name_prefix}-{uuid.uuid4().hex[:6]}"
    contract = parse_contract(
        {
            "name": connector.name,
            "source": {"format": "debezium", "topic": topic},
            "key": ["id"],
            "sequence": connector.sequence,
            "event_time": "source.ts_ms",
            "fields": FIELDS,
        },
        f"contracts/{connector.name}.yaml",
    )
    ensure_topics(broker, [topic], partitions=3)
    registry = SchemaRegistryResource(url=f"mock://{topic}")
    records = connector.records(source_log())
    produce(connector, broker, topic, registry, records[:FIRST_WAVE])
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"dbz-{uuid.uuid4().hex[:6]}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": registry,
        "spark": SparkResource(),
    }
    instance = DagsterInstance.ephemeral()

    def run(asset, partition: str | None = None) -> Any:
        result = materialize([asset], instance=instance, resources=resources, partition_key=partition)
        assert result.success
        return result

    def skipped_tombstones(hour: str) -> int:
        raw = run(build_raw_assets(contract), hour)
        [metadata] = [
            m.metadata
            for m in raw.asset_materializations_for_node(f"raw_{contract.name}")
            if m.asset_key == asset_key("raw", contract)
        ]
        assert metadata["quarantined"].value == 0
        return int(metadata["skipped_tombstones"].value)

    def state(layer: str, day: date | None = None) -> dict[int, tuple]:
        rows = resources["lake"].read(layer, contract.name).to_pylist()
        return {
            r["id"]: (r["name"], r["balance"], r["updated_at"])
            for r in rows
            if day is None or r["snapshot_date"] == day
        }

    events = source_log()
    hours = [day.strftime("%Y-%m-%d-%H:%M") for day in DAYS]
    run(build_landing_asset(contract))
    landed = resources["lake"].read("landing", contract.name).to_pylist()
    assert len({row["partition"] for row in landed}) > 1  # the keys are spread over the partitions
    for hour in hours:
        skipped_tombstones(hour)
    for hour in reversed(hours):  # the older hour last: source positions keep the newer changes
        run(build_current_asset(contract), hour)
    # Key 6's resent update arrived after its delete: Kafka order would bring it back, its LSN does not.
    assert state("current") == database_state(events, DAYS[1] + timedelta(days=1))
    assert 6 not in state("current")

    produce(connector, broker, topic, registry, records[FIRST_WAVE:])
    run(build_landing_asset(contract))
    skipped = skipped_tombstones(hours[0]) + skipped_tombstones(hours[1])
    run(build_current_asset(contract), hours[1])
    assert skipped == sum(1 for _, payload, _ in records if payload is None) == 6  # 4 deletes, 2 resent
    assert resources["lake"].read("quarantine", contract.name).num_rows == 0
    assert state("current") == database_state(events, DAYS[1] + timedelta(days=1))

    for day in DAYS:
        run(build_history_asset(contract), day.strftime("%Y-%m-%d"))
    for day in DAYS:
        end_of_day = datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        assert state("history", day.date()) == database_state(events, end_of_day), day


def test_a_contract_is_inferred_from_the_topic(broker, tmp_path, capsys):
    from cli.__main__ import main
    from platform_assets.lib.contract import load_contracts

    topic = f"pg.public.persons-{uuid.uuid4().hex[:6]}"
    ensure_topics(broker, [topic], partitions=3)
    connector = CONNECTORS[0]
    tombstone_first = [({"id": 0}, None, int(DAYS[0].timestamp() * 1000))]  # not a change event: passed over
    produce(connector, broker, topic, SchemaRegistryResource(), tombstone_first + connector.records(source_log())[:3])
    (tmp_path / "contracts").mkdir()
    output = tmp_path / "contracts" / "persons.yaml"
    main(["contracts", "infer", "--topic", topic, "--bootstrap", broker, "--output", str(output), "--name", "persons"])
    assert f"wrote {output}: entity persons, 4 fields" in capsys.readouterr().out
    [contract] = load_contracts(output.parent)
    assert (contract.sequence, contract.event_time, contract.key) == (("source.lsn",), "source.ts_ms", ("id",))
    assert [(f.name, f.type, f.nullable) for f in contract.fields] == [
        ("id", "int", False),
        ("name", "string", False),
        ("balance", "decimal", True),
        ("updated_at", "timestamp", True),
    ]
    assert (contract.field("balance").precision, contract.field("balance").scale) == (12, 2)
