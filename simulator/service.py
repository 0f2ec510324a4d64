"""The simulated services on the wire: Kafka producer, REST full export, and a command line.

python -m simulator --bootstrap 127.0.0.1:9092 --hours 48          # as fast as possible
python -m simulator --bootstrap 127.0.0.1:9092 --live --rest-port 8765
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from resources.kafka import KafkaResource
from simulator.source import ALL_TOPICS, Event, SourceSystem


def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int = 1, config: Mapping[str, str] | None = None
) -> None:
    """Create the topics that do not exist; `config` holds the client's security settings, if any."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(config or {})})
    existing = set(admin.list_topics(timeout=30).topics)
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing]
    for topic, future in admin.create_topics(missing).items() if missing else ():
        try:
            future.result(timeout=30)
        except Exception as error:
            if "already exists" not in str(error).lower() and "TOPIC_ALREADY_EXISTS" not in str(error):
                raise RuntimeError(f"could not create topic {topic}: {error}") from error


class Publisher:
    """Publishes source events with their key, a header naming the source, and the publish timestamp."""

    def __init__(self, bootstrap: str, **config: str | int) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})

    def publish(self, events: Iterable[Event]) -> int:
        count = 0
        for event in events:
            self._producer.produce(
                event.topic,
                key=event.key.encode(),
                value=event.encoded_value(),
                headers=[("source", b"simulator"), ("event-type", event.topic.encode())],
                timestamp=int(event.publish_time.timestamp() * 1000),
            )
            count += 1
            if count % 10_000 == 0:
                self._producer.flush()
        self.flush()
        return count

    def flush(self) -> None:
        remaining = self._producer.flush(60)
        if remaining:
            raise RuntimeError(f"{remaining} events were not acknowledged by the broker within 60 s")


def serve_rest(source: SourceSystem, port: int, lock: threading.Lock) -> ThreadingHTTPServer:
    """Serve `GET /customers?page=N&page_size=M`, the customer service's paginated full export."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/customers":
                self.send_error(404, "only /customers is served")
                return
            query = parse_qs(url.query)
            page, page_size = int(query.get("page", ["1"])[0]), int(query.get("page_size", ["500"])[0])
            with lock:
                body = json.dumps(source.customer_page(page, page_size)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_simulated(source: SourceSystem, publisher: Publisher, hours: int) -> int:
    count = sum(publisher.publish(events) for events in source.hours(hours))
    return count + publisher.publish(source.flush_late())


def run_live(source: SourceSystem, publisher: Publisher, lock: threading.Lock, seconds_per_hour: float) -> None:
    """Publish forever: every `seconds_per_hour`, the events of the hour before the wall clock."""
    while True:
        now = datetime.now(UTC)
        with lock:
            events = source.hour(now - timedelta(hours=1))
        publisher.publish(Event(e.topic, e.key, e.value, e.event_time, now) for e in events)
        time.sleep(seconds_per_hour)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="simulator", description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00", help="first simulated hour (UTC)")
    parser.add_argument("--hours", type=int, default=48, help="simulated hours to publish, then exit")
    parser.add_argument("--live", action="store_true", help="publish forever with wall-clock event times")
    parser.add_argument("--seconds-per-hour", type=float, default=30.0, help="live mode: pace of simulated hours")
    parser.add_argument("--rest-port", type=int, default=0, help="serve the REST export on this port")
    parser.add_argument(
        "--backlog-hours",
        type=int,
        default=0,
        help="live mode: first publish the events of this many hours before the current one, as a source "
        "that has been running for a while",
    )
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start)
    if args.live and args.backlog_hours:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=args.backlog_hours)
    source = SourceSystem(seed=args.seed, start=start)
    # The same KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* settings as the platform's clients.
    security = KafkaResource.settings_from_env().client_config()
    ensure_topics(args.bootstrap, ALL_TOPICS, config=security)
    publisher = Publisher(args.bootstrap, **security)
    lock = threading.Lock()
    if args.rest_port:
        serve_rest(source, args.rest_port, lock)
    if args.live:
        if args.backlog_hours:
            with lock:
                count = run_simulated(source, publisher, args.backlog_hours)
            print(f"published {count} events for the {args.backlog_hours} hours before this one", flush=True)
        run_live(source, publisher, lock, args.seconds_per_hour)
    count = run_simulated(source, publisher, args.hours)
    print(f"published {count} events for {args.hours} simulated hours")
