"""Check the contracts before they are deployed: every file is loaded and validated as the code location
would, and every mistake is printed with its file, key and fix.

    python -m cli contracts validate [DIRECTORY]     # exit status 1 when any contract is refused
    python -m cli contracts migrate --entity NAME    # rebuild an entity's tables after a breaking change
    python -m cli contracts infer --topic pg.public.persons [--bootstrap HOST:PORT] [--output FILE]
        # a contract from the first Debezium change event on the topic (JsonConverter, schemas enabled)
    python -m cli contracts infer --topic pg.public.persons --registry [--output FILE]
        # a contract from the topic's subjects in the schema registry (AvroConverter; SCHEMA_REGISTRY_URL)
    python -m cli contracts sync contracts/persons.yaml [--write]
        # the change that adopts the newest registered schema, as a diff of the contract file

`validate` also compares each contract with the tables the lake holds (PLATFORM_LAKE_ROOT) and refuses
a change they cannot follow in place; `migrate` is that change's way forward (see README, Contract
changes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import yaml

from platform_assets.entity import contract_changes_refused
from platform_assets.lib.contract import Contract, parse_contract, read_contracts
from platform_assets.lib.infer import InferenceError, infer_contract, infer_contract_from_registry, is_change_event
from platform_assets.settings import PlatformSettings
from resources.kafka import DEFAULT_BOOTSTRAP
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="load and check every contract")
    validate.add_argument("directory", nargs="?", type=Path, help="default: PLATFORM_CONTRACTS_DIR or contracts/")
    migrate = actions.add_parser("migrate", help="rebuild an entity's tables from the archive with its contract")
    migrate.add_argument("--entity", required=True)

    infer = actions.add_parser("infer", help="write a contract from a Debezium topic's first change event")
    infer.add_argument("--topic", required=True)
    infer.add_argument(
        "--registry",
        action="store_true",
        help="read the topic's Avro schemas from the schema registry (SCHEMA_REGISTRY_URL), not its first event",
    )
    infer.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help="default: KAFKA_BOOTSTRAP_SERVERS",
    )
    infer.add_argument("--name", help="entity name (default: the captured table's name)")
    infer.add_argument("--output", type=Path, help="contract file to write (default: print it)")
    infer.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a change event")
    sync = actions.add_parser("sync", help="propose the contract change that adopts the newest registered schema")
    sync.add_argument("contract", type=Path, help="the contract file")
    sync.add_argument("--write", action="store_true", help="write the change into the file (default: print the diff)")


def run(args: argparse.Namespace) -> None:
    if args.action == "infer":
        infer(args)
        return
    if args.action == "sync":
        sync(args.contract, args.write)
        return
    directory = getattr(args, "directory", None) or PlatformSettings.from_env().contracts_dir
    contracts, refused = read_contracts(directory)
    lake = LakeResource.from_env()
    if args.action == "migrate":
        _migrate(args.entity, contracts, lake)
        return
    errors = [broken.error for broken in refused]
    for contract in contracts:
        change_refused = contract_changes_refused(lake, contract)
        if change_refused:
            errors.append(change_refused)
        else:
            print(f"ok  {contract.path}: entity {contract.name}, {len(contract.fields)} fields")
    for error in errors:
        print(f"contract refused: {error}", file=sys.stderr)
    if errors:
        raise SystemExit(1)


def _migrate(entity: str, contracts: list[Contract], lake: LakeResource) -> None:
    from platform_assets.migration import migrate
    from resources.spark import SparkResource

    by_name = {contract.name: contract for contract in contracts}
    if entity not in by_name:
        raise SystemExit(f"no contract named `{entity}`; entities are {sorted(by_name)}")
    published = migrate(
        by_name[entity], lake, SparkResource.from_env().session(), SchemaRegistryResource.from_env().lookup()
    )
    print(json.dumps({"entity": entity, "rows_published": published}))


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
    try:
        if args.registry:
            document, left_out = infer_contract_from_registry(args.topic, *_registered_schemas(args.topic), args.name)
            origin = "the schema registry subjects of"
        else:
            document, left_out = infer_contract(
                args.topic, *first_change_event(args.bootstrap, args.topic, args.timeout), args.name
            )
            origin = "a Debezium change event on"
    except InferenceError as error:
        raise SystemExit(f"cannot infer a contract from `{args.topic}`: {error}") from error
    text = f"# Inferred from {origin} {args.topic}: review owner, pii and descriptions before deploying.\n"
    text += yaml.safe_dump(document, sort_keys=False, width=120)
    for reason in left_out:
        print(f"left out: {reason}")
    if args.output is None:
        print(text, end="")
        return
    args.output.write_text(text)
    print(f"wrote {args.output}: entity {document['name']}, {len(document['fields'])} fields")


def _registered_schemas(topic: str) -> tuple[str, str | None]:
    """The newest value and key schemas registered for the topic's subjects."""
    from platform_assets.schema_changes import registered_schemas

    registry = _registry("--registry")
    schemas = registered_schemas(registry, topic)
    if schemas is None:
        raise SystemExit(_no_subject(registry, topic))
    value, key = schemas
    return value.schema, key.schema if key is not None else None


def sync(path: Path, write: bool) -> None:
    from platform_assets.schema_changes import REGISTRY_FORMATS, propose, registered_schemas

    contract = parse_contract(yaml.safe_load(path.read_text()), str(path))
    if contract.source.format not in REGISTRY_FORMATS:
        raise SystemExit(
            f"{path}: source format `{contract.source.format}` has no registered schemas; sync follows the Avro "
            f"topics of formats {', '.join(REGISTRY_FORMATS)}"
        )
    registry = _registry("sync")
    [topic] = contract.source.topics
    schemas = registered_schemas(registry, topic)
    if schemas is None:
        raise SystemExit(f"{path}: {_no_subject(registry, topic)}")
    proposal = propose(contract, *schemas)
    for reason in proposal.left_out:
        print(f"left out: {reason}")
    print(proposal.diff(), end="")
    print(proposal.message(), file=sys.stdout if proposal.compatible else sys.stderr)
    if write and proposal.changes:
        path.write_text(proposal.text)
        print(f"wrote {path}")


def _registry(command: str) -> SchemaRegistryResource:
    registry = SchemaRegistryResource.from_env()
    if registry.url is None:
        raise SystemExit(f"{command} reads the schema registry at SCHEMA_REGISTRY_URL, which is not set")
    return registry


def _no_subject(registry: SchemaRegistryResource, topic: str) -> str:
    from platform_assets.schema_changes import value_subject

    return (
        f"the schema registry at {registry.url} has no subject `{value_subject(topic)}`; check the topic name and "
        "that the connector uses the AvroConverter (TopicNameStrategy)"
    )
