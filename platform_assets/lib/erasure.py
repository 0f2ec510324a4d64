"""The erasure policy: which rows of which entity name a person, and how to find them in each layer.

Pure rules (no lake, no Dagster): the lake work is in `platform_assets.erasure`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_
from typing import Any

import pyarrow.compute as pc

from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup, decode, named_subject
from platform_assets.lib.pii import hash_value, protect
from platform_assets.lib.records import Decoded, LandingRecord, record_identity
from platform_assets.lib.tables import sql_literal

# The layers that hold rows by key after landing (tombstones keep the key of a deleted row).
KEYED_LAYERS = (
    "raw",
    "raw_keys",
    "current",
    "current_tombstones",
    "history",
    "history_tombstones",
    "scd2",
    "scd2_tombstones",
)
ERASED_LAYERS = ("landing", "quarantine", *KEYED_LAYERS)


class ErasureError(RuntimeError):
    """An erasure that could not be proven complete, or a request that cannot be carried out."""


@dataclass(frozen=True)
class Target:
    """The rows of one entity that an erasure removes: those of its own keys (`subject_field` None),
    or those whose `subject_field` names an erased person of another entity."""

    contract: Contract
    subject_field: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return self.contract.key if self.subject_field is None else (self.subject_field,)

    def named(self, record: LandingRecord, decoded: Decoded, schema_lookup: SchemaLookup | None) -> str | None:
        """Who a landed record is about, in the form erasure requests name keys."""
        if self.subject_field is None:
            return record_identity(self.contract, record, decoded)
        return named_subject(self.contract, record, decoded, self.subject_field, schema_lookup)

    def named_by_bytes(self, record: LandingRecord, schema_lookup: SchemaLookup | None) -> str | None:
        """`named` for a record not decoded yet (the archive, quarantine)."""
        return self.named(record, decode(self.contract, record, schema_lookup), schema_lookup)

    def stored(self, keys: list[str], secret: bytes) -> set[tuple]:
        """The keys as the target's fields hold them after landing: typed (a request names `123` for an
        integer key) and hashed there if the contract says so."""
        result = set()
        for identity in keys:
            parts = identity.split("|")
            try:
                typed = {
                    name: int(part) if self.contract.field(name).type in ("int", "long") else part
                    for name, part in zip(self.fields, parts, strict=True)
                }
            except ValueError as error:
                raise ErasureError(
                    f"key `{identity}` does not fit the key of {self.contract.name} ({' | '.join(self.fields)}): "
                    "give one value per field, joined with `|` in contract order, integers for integer fields"
                ) from error
            values = protect(self.contract, typed, secret)
            result.add(tuple(values[name] for name in self.fields))
        return result

    def predicate(self, keys: list[str], secret: bytes) -> str:
        """SQL that selects the target's rows about `keys` in a keyed layer."""
        return self.stored_predicate(self.stored(keys, secret))

    def stored_predicate(self, stored: Iterable[tuple]) -> str:
        """SQL that selects the target's rows whose fields hold one of `stored` (values as stored)."""
        clauses = (
            " AND ".join(f"{name} = {sql_literal(value)}" for name, value in zip(self.fields, row, strict=True))
            for row in sorted(stored)
        )
        return " OR ".join(f"({clause})" for clause in clauses)

    def row_hash(self, row: Mapping[str, Any], secret: bytes) -> str | None:
        """The erasure-list hash of whom a stored row is about; None when the row cannot tell (a key of
        several fields, one of them stored hashed). A field stored with `pii: hash` holds that hash."""
        specs = [self.contract.field(name) for name in self.fields]
        if any(spec.pii == "hash" for spec in specs):
            return row[self.fields[0]] if len(specs) == 1 else None
        return hash_value("|".join(str(row[name]) for name in self.fields), secret)

    def expression(self, keys: list[str], secret: bytes) -> pc.Expression:
        """`predicate` as an Arrow filter, for reads that prune files by their statistics."""
        clauses = (
            reduce(and_, (pc.field(name) == value for name, value in zip(self.fields, row, strict=True)))
            for row in sorted(self.stored(keys, secret))
        )
        return reduce(or_, clauses)


def erasure_targets(subject: Contract, contracts: Iterable[Contract]) -> list[Target]:
    """Every entity's rows that name a person of `subject`: its own, and those of its `subject` fields."""
    return [
        Target(subject),
        *(Target(c, spec.name) for c in contracts for spec in c.fields if spec.subject == subject.name),
    ]


def watched_targets(contract: Contract) -> list[tuple[Target, str]]:
    """What decoding `contract` must drop: its own erased keys, and records naming an erased subject
    of another entity, each with the entity whose erasure list holds them."""
    return [(Target(contract), contract.name)] + [
        (Target(contract, spec.name), spec.subject) for spec in contract.fields if spec.subject is not None
    ]


def erased_record_test(
    contract: Contract,
    erased_hashes: Mapping[str, set[str]],
    secret: bytes,
    schema_lookup: SchemaLookup | None = None,
) -> Callable[[LandingRecord, Decoded], bool] | None:
    """Whether a record is about an erased key of its entity, or names an erased subject of another
    (`erased_hashes`: entity -> hashes on its erasure list); None while no list concerns `contract`,
    so decoding need not look at each record for it."""
    checks = [(target, hashes) for target, entity in watched_targets(contract) if (hashes := erased_hashes.get(entity))]
    if not checks:
        return None

    def is_erased(record: LandingRecord, decoded: Decoded) -> bool:
        for target, hashes in checks:
            named = target.named(record, decoded, schema_lookup)
            if named is not None and hash_value(named, secret) in hashes:
                return True
        return False

    return is_erased


def _by_partition(positions: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], list[int]]:
    by_partition: dict[tuple[str, int], list[int]] = {}
    for t, p, o in positions:
        by_partition.setdefault((t, p), []).append(o)
    return {position: sorted(offsets) for position, offsets in sorted(by_partition.items())}


def positions_expression(
    positions: Iterable[tuple[str, int, int]], topic: str, partition: str, offset: str
) -> pc.Expression:
    """An Arrow filter for the records at `positions`; offsets grow with time, so file statistics prune."""
    return reduce(
        or_,
        (
            (pc.field(topic) == t) & (pc.field(partition) == p) & pc.field(offset).isin(offsets)
            for (t, p), offsets in _by_partition(positions).items()
        ),
        pc.scalar(False),
    )


def positions_predicate(positions: Iterable[tuple[str, int, int]], topic: str, partition: str, offset: str) -> str:
    """SQL that selects the records at `positions` (topic, partition, offset) by the given columns."""
    return " OR ".join(
        f"({topic} = {sql_literal(t)} AND {partition} = {p} AND {offset} IN ({', '.join(map(str, offsets))}))"
        for (t, p), offsets in _by_partition(positions).items()
    )
