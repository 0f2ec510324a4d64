"""Helpers shared by the tests (fixtures live in conftest.py)."""

import json
import uuid

from confluent_kafka import Producer

from platform_assets.lib.contract import Contract, parse_contract
from platform_assets.partitions import range_tags
from simulator.service import ensure_topics


def run(defs, instance, job: str, first: str, last: str):
    """Run a job over a partition range in one run (as a single-run backfill does)."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), raise_on_error=False
    )


def json_entity_on_new_topic(broker: str, name: str, event_times: list, timestamp_ms: int = 0) -> Contract:
    """A JSON contract `name` (key `id`, sequence `v`, event time `ts`) on a new topic that holds one
    record per event time, keyed k0, k1, ...; `timestamp_ms` is their Kafka timestamp (0: now)."""
    topic = f"{name}-{uuid.uuid4().hex[:6]}"
    ensure_topics(broker, [topic])
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for i, event_time in enumerate(event_times):
        value = json.dumps({"id": f"k{i}", "ts": event_time, "v": i}).encode()
        producer.produce(topic, key=f"k{i}".encode(), value=value, timestamp=timestamp_ms)
    assert producer.flush(30) == 0
    return parse_contract(
        {
            "name": name,
            "source": {"format": "json", "topic": topic},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {"nullable": False}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )
