"""Check the contracts before they are deployed: every file is loaded and validated as the code location
would, and every mistake is printed with its file, key and fix.

    python -m cli contracts validate [DIRECTORY]     # exit status 1 when any contract is refused
    python -m cli contracts infer --topic pg.public.persons [--bootstrap HOST:PORT] [--output FILE]
        # a contract from the first Debezium change event on the topic (JsonConverter, schemas enabled)
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path

import yaml

from platform_assets.lib.contract import ContractError, load_contracts
from platform_assets.lib.infer import InferenceError, infer_contract, is_change_event
from platform_assets.settings import PlatformSettings
from resources.kafka import DEFAULT_BOOTSTRAP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="load and check every contract")
    validate.add_argument("directory", nargs="?", type=Path, help="default: PLATFORM_CONTRACTS_DIR or contracts/")
    infer = actions.add_parser("infer", help="write a contract from a Debezium topic's first change event")
    infer.add_argument("--topic", required=True)
    infer.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help="default: KAFKA_BOOTSTRAP_SERVERS",
    )
    infer.add_argument("--name", help="entity name (default: the captured table's name)")
    infer.add_argument("--output", type=Path, help="contract file to write (default: print it)")
    infer.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a change event")


def run(args: argparse.Namespace) -> None:
    if args.action == "infer":
        infer(args)
        return
    directory = args.directory or PlatformSettings.from_env().contracts_dir
    try:
        contracts = load_contracts(directory)
    except ContractError as error:
        raise SystemExit(f"contract refused: {error}") from error
    for contract in contracts:
        print(f"ok  {contract.path}: entity {contract.name}, {len(contract.fields)} fields")


def first_change_event(bootstrap: str, topic: str, timeout_s: float) -> tuple[bytes | None, bytes | None]:
    """The key and value of the first row change on the topic, read from the beginning of every
    partition by a throw-away consumer group that commits nothing."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"platform-infer-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise SystemExit(f"topic `{topic}` does not exist on {bootstrap}")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None and is_change_event(message.value()):
                return message.key(), message.value()
    finally:
        consumer.close()
    raise SystemExit(
        f"no Debezium change event with its schema on `{topic}` within {timeout_s:.0f}s; check the topic and "
        "that the connector uses the JsonConverter with schemas.enable=true"
    )


def infer(args: argparse.Namespace) -> None:
    key, value = first_change_event(args.bootstrap, args.topic, args.timeout)
    try:
        document, left_out = infer_contract(args.topic, key, value, args.name)
    except InferenceError as error:
        raise SystemExit(f"cannot infer a contract from `{args.topic}`: {error}") from error
    text = "# Inferred from a Debezium change event: review owner, pii and descriptions before deploying.\n"
    text += yaml.safe_dump(document, sort_keys=False, width=120)
    for reason in left_out:
        print(f"left out: {reason}")
    if args.output is None:
        print(text, end="")
        return
    args.output.write_text(text)
    print(f"wrote {args.output}: entity {document['name']}, {len(document['fields'])} fields")
