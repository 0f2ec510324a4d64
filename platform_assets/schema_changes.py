"""The contract change that would adopt a schema registered for an entity's Avro topic.

A producer registers a new version of `<topic>-value` (and `<topic>-key`) before or while it sends
records of that shape; the contract decides what the platform keeps of them. The proposal names every
change (fields added, widened, made nullable or removed, the key), says whether the tables could follow
it in place (the evolution rules `ensure_tables` applies), and edits the contract's YAML file as a
person would, comments and layout kept, so the change is reviewed as a diff of the file.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from platform_assets.entity import changes_refused_between
from platform_assets.lib.contract import Contract, ContractError, parse_contract, parse_field
from platform_assets.lib.evolution import migration_hint
from platform_assets.lib.infer import InferenceError, RowSchema, avro_row_schema
from platform_assets.lib.tables import arrow_type
from resources.lake import is_widening
from resources.schema_registry import RegisteredSchema, SchemaRegistryResource

# Source formats whose topics may carry registered Avro schemas (Debezium over the AvroConverter included).
REGISTRY_FORMATS = ("avro", "debezium")


def value_subject(topic: str) -> str:
    """The subject of a topic's value schemas (the serializers' default TopicNameStrategy)."""
    return f"{topic}-value"


def key_subject(topic: str) -> str:
    return f"{topic}-key"


@dataclass(frozen=True)
class ContractProposal:
    """What adopting `registered` would change in `contract`: `text` is the contract file with the
    changes made, `refusals` why its tables could not follow them in place (none: compatible)."""

    contract: Contract
    registered: RegisteredSchema
    changes: tuple[str, ...]
    refusals: tuple[str, ...]
    left_out: tuple[str, ...]
    original: str
    text: str

    @property
    def compatible(self) -> bool:
        return not self.refusals

    def diff(self) -> str:
        """The change as a unified diff of the contract file."""
        path = self.contract.path  # the file's own name on both sides, as `patch -p0` applies it
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True), self.text.splitlines(keepends=True), path, path
        )
        return "".join(lines)

    @property
    def reportable(self) -> bool:
        """Whether the contract differs from the schema: a change to make, or a schema it cannot take."""
        return bool(self.changes or self.refusals)

    def message(self) -> str:
        subject = f"subject `{self.registered.subject}` version {self.registered.version}"
        where = f"`{self.contract.name}` ({self.contract.path})"
        if not self.reportable:
            return f"{where}: {subject} matches the contract"
        adopt = f"; to adopt it: {'; '.join(self.changes)}" if self.changes else ""
        review = f"review the diff with `python -m cli contracts sync {self.contract.path}`"
        if self.compatible:
            return f"{where}: {subject} is compatible with the contract{adopt}; {review}"
        return (
            f"{where}: {subject} is incompatible with the contract{adopt}; the tables cannot follow it in place: "
            f"{'; '.join(self.refusals)}; {review}, then {migration_hint(self.contract)}"
        )


def registered_schemas(
    registry: SchemaRegistryResource, topic: str
) -> tuple[RegisteredSchema, RegisteredSchema | None] | None:
    """The newest value and key schemas registered for the topic (None: it has no value subject; no key
    schema: its keys are not Avro)."""
    value = registry.latest_schema(value_subject(topic))
    if value is None:
        return None
    return value, registry.latest_schema(key_subject(topic))


def propose(contract: Contract, value: RegisteredSchema, key: RegisteredSchema | None) -> ContractProposal:
    """The contract change that adopts the `value` (and `key`) schema, made in the contract's file."""
    original = Path(contract.path).read_text()
    try:
        row = avro_row_schema(value.schema, key.schema if key is not None else None)
    except InferenceError as error:
        refusal = f"{value.subject} version {value.version} cannot be read: {error}"
        return ContractProposal(contract, value, (), (refusal,), (), original, original)
    editor = _round_trip(original)
    document = editor.load(original)
    changes, refusals = _adopt(contract, row, document)
    out = io.StringIO()
    editor.dump(document, out)
    if changes:
        try:
            proposed = parse_contract(_plain(document), contract.path)
        except ContractError as error:
            refusals.append(str(error))
        else:
            refusals += changes_refused_between(contract, proposed)
    return ContractProposal(
        contract, value, tuple(changes), tuple(refusals), tuple(row.left_out), original, out.getvalue()
    )


def _adopt(contract: Contract, row: RowSchema, document: Any) -> tuple[list[str], list[str]]:
    """Edit `document` (the contract as ruamel reads it) to adopt `row`; the changes made, and the
    columns the contract cannot lose (its key, sequence and event time) that the schema no longer has."""
    fields = document["fields"]
    declared = {spec.name: spec for spec in contract.fields}
    flow = any(isinstance(spec, CommentedMap) and spec.fa.flow_style() for spec in fields.values())
    changes, refusals = [], []
    for name, inferred in row.fields.items():
        if name not in declared:
            fields[name] = _mapping(inferred, flow)
            changes.append(f"add field `{name}` {_shown(inferred)}")
            continue
        old, new = declared[name], parse_field(name, inferred, contract.path)
        old_type, new_type = arrow_type(old), arrow_type(new)
        if not _holds(old_type, new_type):
            fields[name]["type"] = inferred["type"]
            verb = "widen" if is_widening(old_type, new_type) else "change"
            changes.append(f"{verb} field `{name}` from {_type(old)} to {inferred['type']}")
        if not old.nullable and new.nullable:
            del fields[name]["nullable"]
            changes.append(f"make field `{name}` nullable")
    identity = {*contract.key, *contract.sequence, contract.event_time}
    for name in [name for name in declared if name not in row.columns]:
        if name in identity:
            refusals.append(
                f"field `{name}` is in the contract's key, sequence or event_time, and the schema has it not"
            )
        else:
            del fields[name]
            changes.append(f"remove field `{name}` (its column stays, no longer filled)")
    if row.key and tuple(row.key) != contract.key:
        document["key"] = CommentedSeq(row.key)
        document["key"].fa.set_flow_style()
        changes.append(f"change the key from {list(contract.key)} to {row.key}")
    return changes, refusals


def _holds(declared: pa.DataType, registered: pa.DataType) -> bool:
    """Whether the contract's type is a deliberate reading of the registered type that decoding does: the
    same or a wider type, a number read as a double, or a double read as a declared decimal (how Debezium
    sends an unconstrained NUMERIC or `decimal.handling.mode=double`; a value that does not fit goes to
    quarantine with its reason, as any decimal's)."""
    numbers = pa.types.is_integer(registered) or pa.types.is_decimal(registered)
    return (
        declared == registered
        or is_widening(registered, declared)
        or (pa.types.is_floating(declared) and numbers)
        or (pa.types.is_decimal(declared) and pa.types.is_floating(registered))
    )


def _type(spec: Any) -> str:
    return f"decimal({spec.precision}, {spec.scale})" if spec.type == "decimal" else str(spec.type)


def _shown(spec: dict[str, Any]) -> str:
    """A field as the contract writes it: `{type: string, nullable: false}`."""
    return yaml.safe_dump(spec, default_flow_style=True, sort_keys=False, width=4096).strip()


def _mapping(spec: dict[str, Any], flow: bool) -> CommentedMap:
    mapping = CommentedMap(spec)
    if flow:
        mapping.fa.set_flow_style()
    return mapping


def _plain(node: Any) -> Any:
    """A ruamel document as plain dicts and lists, as `parse_contract` reads YAML."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def _round_trip(text: str) -> YAML:
    """A YAML reader and writer that gives `text` back unchanged (list indentation as the file has it),
    so the diff shows the proposed change only; a file laid out otherwise gets ruamel's layout."""
    for sequence, offset in ((2, 0), (4, 2)):
        yaml = YAML()
        yaml.width = 4096
        yaml.preserve_quotes = True
        yaml.indent(mapping=2, sequence=sequence, offset=offset)
        out = io.StringIO()
        yaml.dump(yaml.load(text), out)
        if out.getvalue() == text:
            return yaml
    return yaml
