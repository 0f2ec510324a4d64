"""The right to erasure, carried out on the lake: remove a person's keys from every table and every old
table version (the policy of what to remove is `platform_assets.lib.erasure`).

An erasure is recorded first in `erasure/<entity>` (keys only as HMAC hashes), so that every later
decode of the archive or of Kafka drops those keys, and the records of other entities whose
`subject` field names them (`raw` honours the list on replay). Then those rows are deleted from
raw, landing (the archive: found through raw's columns and the landing position raw keeps of each
record, decoding only the records raw does not hold), quarantine, current and history of every
such entity, and old Delta files are vacuumed so earlier table versions no longer hold them. The
`audit/erasures` table records each request with the rows removed per table and the first day whose
marts counted them, never the values; `erasure_marts_sensor` then rebuilds the marts from that day.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import pyarrow as pa
from deltalake import DeltaTable

from platform_assets.entity import raw_keys_cover
from platform_assets.lib import erasure as policy
from platform_assets.lib.archive import ERASURE_GENERATION, landing_records
from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup, decode
from platform_assets.lib.erasure import ERASED_LAYERS, KEYED_LAYERS, ErasureError, Target
from platform_assets.lib.pii import hash_value, pii_key
from platform_assets.lib.records import (
    KAFKA_POSITION,
    KAFKA_POSITION_COLUMNS,
    LANDING_POSITION_COLUMNS,
    Decoded,
    LandingRecord,
)
from platform_assets.lib.tables import (
    AUDIT_SCHEMA,
    ERASURE_SCHEMA,
    LANDING_SCHEMA,
    QUARANTINE_SCHEMA,
    hours_predicate,
)
from resources.lake import FileHours, LakeCommitConflictError, LakeResource, vacuum

RAW_POSITION = ", ".join(KAFKA_POSITION_COLUMNS)
# In one pass over raw and the archive (of the event hours `within` selects), joined by position: raw's
# rows that name the person (`named`: the target's predicate over raw alone), and the archive's records
# raw does not hold (quarantined, skipped, or of hours not decoded yet), which have no raw position.
# Only the hours `unsure` selects are joined: in the others raw holds as many rows as landing records
# (`_unsure_hours`), so the join reads raw's rows that name the person and nothing of landing there; and
# `named_in` looks for those only in the hours `raw_keys` names for the person (`_indexed_hours`).
NAMED_OR_UNACCOUNTED = """
    with raw_rows as (
            select {raw_position}, _event_hour, ({named}) as named from raw
            where {within} and (({named_in}) or {unsure})),
        landed as (select topic, "partition", "offset", _event_hour from landing where {within} and {unsure})
    select landed.topic, landed."partition", landed."offset", landed._event_hour as landed_hour, raw_rows.*
    from landed full join raw_rows on raw_rows._topic = landed.topic
        and raw_rows._partition = landed."partition" and raw_rows._offset = landed."offset"
    where raw_rows._offset is null or raw_rows.named
"""
# The keyed tables a raw run writes (`replace_raw`), which may commit beside an erasure.
RAW_RUN_WRITES = ("raw_keys", "raw")
# The tables whose files say which event hours changed between two looks (`InRaw.files`).
LOOKED_AT = ("raw", "landing", "raw_keys")
# Those whose changes send a pass over raw and the archive to look at an hour again.
RAW_AND_ARCHIVE = ("raw", "landing")


def _erased_hashes(lake: LakeResource, entity: str, version: int | None = None) -> set[str]:
    """The hashes on an entity's erasure list, now or as of `version`."""
    if version is None:
        hashes = lake.read("erasure", entity, schema=ERASURE_SCHEMA, columns=["key_hash"])
    else:
        hashes = lake.table_as_of("erasure", entity, version).to_pyarrow_table(columns=["key_hash"])
    return set(hashes.column("key_hash").to_pylist())


def _vacuum(lake: LakeResource, layer: str, entity: str, retention_hours: int) -> set[str]:
    return _vacuumed(lake.table(layer, entity), retention_hours)


def _vacuumed(table: DeltaTable | None, retention_hours: int) -> set[str]:
    """Delete the files no table version younger than `retention_hours` needs, whatever the table's own
    retention says: an erasure's deleted rows must leave the older files too. Returns the files now gone
    (deleted here, or before): file names are never reused, so none of them can be read again. A table
    not written yet has none."""
    if table is None:
        return set()
    # Named relative to the table, as a dry run names them: exactly the files this vacuum deleted, so a
    # file removed by a later commit is not named and is still looked for.
    return set(vacuum(table, retention_hours))


@contextmanager
def erasures_reapplied(lake: LakeResource, contract: Contract, layers: tuple[str, ...]) -> Iterator[dict[str, int]]:
    """Remove again from `layers`, when the block ends (or fails), the people erased while it ran.

    A merge plans its read of raw before it commits: an erasure that removed a person from raw and from
    these layers in between would see the merge commit the person back. The erasure lists are appended
    before anything is deleted, so a list that grew while the block ran names every such person; their
    rows are deleted again and the files vacuumed, as the erasure did. Yields the rows removed per table.
    """
    watched = policy.watched_targets(contract)
    before = {entity: lake.version("erasure", entity) for _, entity in watched}
    removed: dict[str, int] = {}
    try:
        yield removed
    finally:
        for target, entity in watched:
            if lake.version("erasure", entity) == before[entity]:
                continue
            secret = pii_key()
            erased = _erased_hashes(lake, entity) - (
                set() if before[entity] is None else _erased_hashes(lake, entity, before[entity])
            )
            fields = ", ".join(target.fields)
            for layer in (layer for layer in layers if layer in KEYED_LAYERS):
                rows = lake.select(layer, contract.name, f"select distinct {fields} from {layer}")
                named = {
                    tuple(row[name] for name in target.fields)
                    for row in ([] if rows is None else rows.to_pylist())
                    if target.row_hash(row, secret) in erased
                }
                if named:
                    removed[f"{layer}/{contract.name}"] = lake.delete_where(
                        layer, contract.name, target.stored_predicate(named)
                    )
                    _vacuum(lake, layer, contract.name, retention_hours=0)


def erased_record_test(
    lake: LakeResource, contract: Contract, secret: bytes, schema_lookup: SchemaLookup | None = None
) -> Callable[[LandingRecord, Decoded], bool] | None:
    """Whether a record is about a key on an erasure list the lake holds (see `policy.erased_record_test`);
    None while no list concerns `contract`."""
    entities = {entity for _, entity in policy.watched_targets(contract)}
    hashes = {entity: _erased_hashes(lake, entity) for entity in entities}
    return policy.erased_record_test(contract, hashes, secret, schema_lookup)


def erased_landing_test(
    lake: LakeResource, contract: Contract, schema_lookup: SchemaLookup | None = None
) -> Callable[[LandingRecord], bool] | None:
    """Whether a consumed record is about an erased key, for landing; None while no erasure concerns it
    (landing then decodes nothing). Read the landing table's erasure generation before calling this."""
    entities = {entity for _, entity in policy.watched_targets(contract)}
    hashes = {entity: _erased_hashes(lake, entity) for entity in entities}
    if not any(hashes.values()):
        return None
    erased = policy.erased_record_test(contract, hashes, pii_key(), schema_lookup)
    return None if erased is None else lambda record: erased(record, decode(contract, record, schema_lookup))


def _fence_landing(lake: LakeResource, entity: str) -> None:
    """Bump the landing table's erasure generation, so a landing run that read the erasure lists before
    this erasure cannot commit records of its keys after the scan below has passed them."""
    while (table := lake.table("landing", entity)) is not None:
        generation = table.transaction_version(ERASURE_GENERATION)
        bumped = (-1 if generation is None else generation) + 1
        try:
            lake.append("landing", entity, LANDING_SCHEMA.empty_table(), {ERASURE_GENERATION: bumped}, read=table)
            return
        except LakeCommitConflictError:
            continue  # another erasure bumped it first: bump again past it


class StageClock:
    """Seconds an erasure spent per stage, summed over its targets and tables: what an operator reads
    when an erasure takes long, and what the benchmark compares between archive sizes."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}


@dataclass(frozen=True)
class InRaw:
    """What one pass over raw (and the archive beside it) says about a person."""

    rows: int  # raw's rows that name the person
    positions: set[tuple[str, int, int]]  # their landing positions
    hours: set[datetime]  # their event hours
    # The archive's positions raw does not hold, with their event hours; None: all of the archive.
    unaccounted: dict[tuple[str, int, int], datetime | None] | None
    files: dict[str, FileHours]  # the files of `LOOKED_AT` when the pass began
    scope: set[datetime] | None  # the event hours the pass looked at; None: every hour
    indexed: set[datetime] | None = None  # the hours `raw_keys` names for the person; None: it cannot say


def _find_in_raw(target: Target, keys: set[str], lake: LakeResource, since: InRaw | None = None) -> InRaw:
    """Raw's rows that name `keys`, and the archive's records raw does not hold, in one query.

    With `since` (an earlier pass for the same keys), only the event hours whose files of raw or landing
    changed after that pass began are looked at again: what it found was deleted (so those hours
    changed), and in the files that did not change it found nothing else. The cost is then that of the
    hours the erasure and any concurrent run touched, however large the archive.
    """
    entity = target.contract.name
    # Taken before the query reads the tables: a commit in between counts as a change, never as seen.
    files = {layer: lake.file_hours(layer, entity) for layer in LOOKED_AT}
    scope = None if since is None else _changed_hours(since.files, files, RAW_AND_ARCHIVE)
    if scope is not None and not scope:
        return InRaw(0, set(), set(), {}, files, scope)
    named = target.predicate(sorted(keys), pii_key())
    within = "true" if scope is None else hours_predicate(scope)
    if lake.table("raw", entity) is None:  # nothing decoded yet: every record is a candidate
        return InRaw(0, set(), set(), None, files, None)
    unaccounted: dict[tuple[str, int, int], datetime | None] = {}
    indexed = _indexed_hours(lake, target, named, within)
    named_in = named if indexed is None else f"{hours_predicate(indexed)} and ({named})" if indexed else "false"
    if lake.table("landing", entity) is None:
        query = f"select {RAW_POSITION}, _event_hour, true as named from raw where ({named_in}) and {within}"
        rows = _rows(lake.select("raw", entity, query))
    else:
        unsure = _unsure_hours(files)
        query = NAMED_OR_UNACCOUNTED.format(
            raw_position=RAW_POSITION,
            named=named,
            named_in=named_in,
            within=within,
            unsure="true" if unsure is None else hours_predicate(unsure) if unsure else "false",
        )
        rows = _rows(lake.select("landing", entity, query, ("raw",)))
        # A record with no raw row: every raw column, `named` too, is null beside its landing position.
        unaccounted = {
            _position_of(row, LANDING_POSITION_COLUMNS): row["landed_hour"] for row in rows if row["named"] is None
        }
    in_raw = [row for row in rows if row["named"]]
    return InRaw(
        len(in_raw),
        {_position_of(row, KAFKA_POSITION_COLUMNS) for row in in_raw},
        {row["_event_hour"] for row in in_raw},
        unaccounted,
        files,
        scope,
        indexed,
    )


def _indexed_hours(lake: LakeResource, target: Target, named: str, within: str) -> set[datetime] | None:
    """The event hours `raw_keys` names for the rows `named` selects (the target's predicate): raw then
    opens those hours' files, not every hour's. None when `raw_keys` has not held the target's fields
    for every raw row (`raw_keys_cover`)."""
    entity = target.contract.name
    if not raw_keys_cover(lake, entity, target.fields):
        return None
    indexed = lake.select("raw_keys", entity, f"select distinct _event_hour from raw_keys where ({named}) and {within}")
    return {row["_event_hour"] for row in _rows(indexed)}


def _unsure_hours(files: dict[str, FileHours]) -> set[datetime] | None:
    """The event hours whose landing records raw may not all hold, counted from the two tables' logs as
    a pass looked at them before its query (`files`): those where landing has a different number of
    records than raw has rows (records quarantined, skipped, landed after raw's run, or removed from raw
    alone). None (every hour) when a table is not partitioned by the event hour.

    In an hour where the counts agree, every landing record has its raw row: a raw run writes a row for
    at most each record of its hours, and only an erasure removes landing records, after it has removed
    their raw rows (`erase`), so raw never holds a row whose record is gone but while a raw run that read
    the record commits beside an erasure of its person, which that erasure then finds and removes.
    """
    landed, decoded = files["landing"].rows, files["raw"].rows
    if landed is None or decoded is None:
        return None
    return {hour for hour, records in landed.items() if decoded.get(hour) != records}


def _changed_hours(
    before: dict[str, FileHours], after: dict[str, FileHours], layers: tuple[str, ...]
) -> set[datetime] | None:
    """The event hours of the files added to or removed from `layers` between two looks at them; None
    (every hour) when a file's hours are not known."""
    hours: set[datetime] = set()
    for layer in layers:
        then, now = before[layer].spans, after[layer].spans
        if then is None or now is None:
            return None
        for path in then.keys() ^ now.keys():
            first, last = then.get(path) or now[path]
            hours.update(first + timedelta(hours=n) for n in range(int((last - first) / timedelta(hours=1)) + 1))
    return hours


def _rows(table: pa.Table | None) -> list[dict]:
    """A query's rows (few: `string_view` columns, which delta-rs returns, cannot be filtered in Arrow)."""
    return [] if table is None else table.to_pylist()


def _position_of(row: dict, columns: tuple[str, ...]) -> tuple[str, int, int]:
    topic, partition, offset = (row[c] for c in columns)
    return topic, partition, offset


def _in_hours(hours: set[datetime], predicate: str) -> str:
    """`predicate` over the `_event_hour` partitions in `hours` only: a delete of raw then scans and
    rewrites those partitions' files, not every hour of the archive."""
    return f"{hours_predicate(hours)} AND ({predicate})"


def _landed_positions(
    target: Target,
    keys: set[str],
    lake: LakeResource,
    schema_lookup: SchemaLookup | None,
    named_in_raw: set[tuple[str, int, int]],
    unaccounted: dict[tuple[str, int, int], datetime | None] | None,
) -> set[tuple[str, int, int]]:
    """The archive's positions of the records about `keys`, found without decoding the archive again.

    Raw keeps each decoded record's landing position beside the columns that name the person, so one
    query over raw finds most of them (`named_in_raw`, from `_find_in_raw`). Decoded from their bytes
    are only the records raw does not hold that way: those not in raw at all (`unaccounted`, from the
    same query: quarantined, skipped, of hours raw has not decoded yet) and, for a subject field, raw
    rows that do not carry it, of keys whose other rows name the person (a Debezium delete names the
    person only in its original bytes). The event hours landing filed the candidates under choose the
    archive files to open; those of raw's rows are raw's hours, so with them every file is opened.
    """
    entity = target.contract.name
    if lake.table("landing", entity) is None:
        return set()
    candidates = unaccounted
    positions = set(named_in_raw)
    if target.subject_field is not None and positions:
        named = target.predicate(sorted(keys), pii_key())
        key = ", ".join(target.contract.key)
        same_key = " and ".join(f"raw.{name} = named.{name}" for name in target.contract.key)
        unnamed_rows_of_named_keys = f"""
            select {", ".join(f"raw.{c}" for c in KAFKA_POSITION_COLUMNS)} from raw
            join (select distinct {key} from raw where {named}) as named on {same_key}
            where raw.{target.subject_field} is null"""
        rows = _rows(lake.select("raw", entity, unnamed_rows_of_named_keys))
        candidates = {**(candidates or {}), **{_position_of(row, KAFKA_POSITION_COLUMNS): None for row in rows}}
    if candidates is None or candidates:
        at = "true" if candidates is None else policy.positions_predicate(candidates, *LANDING_POSITION_COLUMNS)
        filed = [] if candidates is None else list(candidates.values())
        if filed and None not in filed:
            at = f"{hours_predicate(set(filter(None, filed)))} and ({at})"
        landed = lake.select("landing", entity, f"select * from landing where {at}")
        records = [] if landed is None else landing_records(landed)
        positions.update(KAFKA_POSITION(r) for r in records if target.named_by_bytes(r, schema_lookup) in keys)
    return positions


def _still_held(
    targets: list[Target],
    keys: list[str],
    landed: dict[str, set[tuple[str, int, int]]],
    lake: LakeResource,
    schema_lookup: SchemaLookup | None,
    first_passes: list[InRaw],
    before_deletes: list[dict[str, frozenset[str]]],
    vacuumed: dict[tuple[str, str], set[str]],
) -> dict[str, int]:
    """Rows about the keys an erasure left readable, looked for as it found them: in each table's current
    version (raw and the archive only in the hours changed since the erasure's first pass over them,
    `first_passes`, one per target; the other keyed tables only in the files added since their delete
    began, `before_deletes`, one per target), and in the files that only older versions still hold
    while the retention keeps them, but for those its vacuum saw gone (`vacuumed`, by layer and entity).
    `landed`: the positions it removed.

    A file of a keyed table that was there before its delete and still is holds none of the rows: the
    delete counted them in every file of its version, by partition, and rewrote each file that held one
    in those partitions (`LakeResource.delete_where`); a file is never written again under its name. A
    row can then only be in a file added since, by the delete or by a writer beside it."""
    found: dict[str, int] = {}
    secret = pii_key()
    for target, first_pass, before in zip(targets, first_passes, before_deletes, strict=True):
        entity = target.contract.name
        named = target.predicate(keys, secret)
        in_raw = _find_in_raw(target, set(keys), lake, since=first_pass)
        # Raw rows that still name the keys are counted in raw; landing's are those decoded again.
        held = {
            "raw": in_raw.rows,
            "landing": len(_landed_positions(target, set(keys), lake, schema_lookup, set(), in_raw.unaccounted)),
        }
        filters = {
            "landing": policy.positions_expression(landed[entity], *LANDING_POSITION_COLUMNS),
            "quarantine": policy.positions_expression(landed[entity], *KAFKA_POSITION_COLUMNS),
            **{layer: target.expression(keys, secret) for layer in KEYED_LAYERS},
        }
        for layer, rows in filters.items():
            if layer == "raw_keys" and (where := _index_left(first_pass, in_raw, named)):
                count = lake.select(layer, entity, f"select count(*) as n from {layer} where {where}")
                held[layer] = 0 if count is None else count.column("n")[0].as_py()
            elif layer in before:
                added = lake.file_paths(layer, entity) - before[layer]
                held[layer] = lake.read_files(layer, entity, added, rows, columns=[]).num_rows
            elif layer == "quarantine" and landed[entity]:
                held[layer] = lake.read(layer, entity, rows, QUARANTINE_SCHEMA).num_rows
            gone = vacuumed.get((layer, entity), set())
            held[f"{layer}@retained"] = lake.read_retained(layer, entity, rows, gone, columns=[]).num_rows
        found.update({f"{layer}/{entity}": n for layer, n in held.items() if n})
    return found


def _index_left(first_pass: InRaw, check: InRaw, named: str) -> str:
    """Where the check looks for rows `named` selects that `raw_keys` still holds ("": nowhere).

    When the first pass read all of `raw_keys` (it trusted it: `indexed`), the files it left unchanged
    hold none of them: that pass found every such row, and the deletes rewrote their files. Rows left
    can then only be in the hours of files added or removed since, by the deletes or by a raw run that
    indexed the person meanwhile; so the check reads those, not every day of the index.
    """
    if first_pass.indexed is None:
        return named
    changed = _changed_hours(first_pass.files, check.files, ("raw_keys",))
    if changed is None:
        return named
    return _in_hours(changed, named) if changed else ""


def erase(
    subject: Contract,
    keys: list[str],
    lake: LakeResource,
    contracts: Iterable[Contract],
    retention_hours: int = 0,
    request_id: str | None = None,
    schema_lookup: SchemaLookup | None = None,
) -> dict:
    """Erase the keys of one entity, and the rows of other entities that name them; returns the audit record,
    with the seconds each stage took (`stage_seconds`, not stored: the audit table keeps what was removed)."""
    clock = StageClock()
    with lake.reusing_tables():  # an erasure reads raw and landing over and over: load each once
        secret = pii_key()
        targets = policy.erasure_targets(subject, contracts)
        for target in targets:  # a key that cannot be read is refused before anything is written
            target.stored(keys, secret)
        request_id = request_id or str(uuid.uuid4())
        requested_at = datetime.now(UTC)
        hashes = [hash_value(identity, secret) for identity in keys]
        with clock.stage("record request"):
            lake.append(
                "erasure",
                subject.name,
                pa.Table.from_pylist(
                    [{"key_hash": h, "request_id": request_id, "requested_at": requested_at} for h in hashes],
                    ERASURE_SCHEMA,
                ),
            )
        with clock.stage("fence landing"):
            for target in targets:
                _fence_landing(lake, target.contract.name)
        removed: dict[str, int] = {}
        landed: dict[str, set[tuple[str, int, int]]] = {}
        first_days = []
        first_passes = []
        before_deletes: list[dict[str, frozenset[str]]] = []
        vacuumed: dict[tuple[str, str], set[str]] = {}
        for target in targets:
            entity = target.contract.name
            with clock.stage("find"):
                in_raw = _find_in_raw(target, set(keys), lake)
                positions = _landed_positions(
                    target, set(keys), lake, schema_lookup, in_raw.positions, in_raw.unaccounted
                )
            first_passes.append(in_raw)
            landed.setdefault(entity, set()).update(positions)
            predicate = target.predicate(keys, secret)
            first_days.append(min(in_raw.hours).date() if in_raw.hours else None)  # the marts counted them from there
            # Raw rows that a raw run writes after the query above (a run that read the erasure list before it
            # was appended) may be in other hours: the check of every hour below finds them, and they go then.
            # Raw before the archive: a landing record is never gone while its raw row stays (`_unsure_hours`).
            in_hours = _in_hours(in_raw.hours, predicate)
            with clock.stage("delete raw"):
                removed[f"raw/{entity}"] = lake.delete_where("raw", entity, in_hours) if in_raw.hours else 0
            for layer, columns in (("landing", LANDING_POSITION_COLUMNS), ("quarantine", KAFKA_POSITION_COLUMNS)):
                at_positions = policy.positions_predicate(positions, *columns)
                with clock.stage(f"delete {layer}"):
                    removed[f"{layer}/{entity}"] = lake.delete_where(layer, entity, at_positions) if positions else 0
            before: dict[str, frozenset[str]] = {}  # the files of each keyed table as its delete begins
            before_deletes.append(before)
            for layer in (layer for layer in KEYED_LAYERS if layer != "raw"):
                where = predicate
                if layer == "raw_keys" and in_raw.indexed is not None:  # only the hours it named
                    where = _in_hours(in_raw.indexed, predicate) if in_raw.indexed else ""
                with clock.stage(f"delete {layer}"):
                    if layer != "raw_keys":  # checked as the first pass read it (`_index_left`)
                        before[layer] = lake.file_paths(layer, entity)
                    removed[f"{layer}/{entity}"] = lake.delete_where(layer, entity, where) if where else 0
            with clock.stage("vacuum"):
                # Every table's vacuum at once: each mostly waits for its own file deletes (a week of upkeep
                # leaves hundreds of removed files in each of raw, landing and raw_keys). Tables are loaded
                # here: the threads do not share `reusing_tables`.
                tables = {layer: lake.table(layer, entity) for layer in ERASED_LAYERS}
                with ThreadPoolExecutor(len(tables), thread_name_prefix="erasure-vacuum") as pool:
                    gone = pool.map(partial(_vacuumed, retention_hours=retention_hours), tables.values())
                    for layer, files in zip(tables, gone, strict=True):
                        vacuumed.setdefault((layer, entity), set()).update(files)
        with clock.stage("verify"):
            found = _still_held(targets, keys, landed, lake, schema_lookup, first_passes, before_deletes, vacuumed)
        # A raw run adds its keys to `raw_keys`, then commits raw: either may come after the deletes above.
        committed_meanwhile = [
            (target, layer)
            for target in targets
            for layer in RAW_RUN_WRITES
            if f"{layer}/{target.contract.name}" in found
        ]
        if committed_meanwhile:  # across every hour: the rare case, so its cost does not matter
            with clock.stage("raw committed meanwhile"):
                for target, layer in committed_meanwhile:
                    entity = target.contract.name
                    removed[f"{layer}/{entity}"] += lake.delete_where(layer, entity, target.predicate(keys, secret))
                    vacuumed[(layer, entity)].update(_vacuum(lake, layer, entity, retention_hours))
                found = _still_held(targets, keys, landed, lake, schema_lookup, first_passes, before_deletes, vacuumed)
        audit = {
            "request_id": request_id,
            "entity": subject.name,
            "requested_at": requested_at,
            "keys": len(keys),
            "rows_removed": json.dumps(removed, sort_keys=True),
            "retention_hours": retention_hours,
            "verified": not found,
            "marts_from_day": min((day for day in first_days if day is not None), default=None),
        }
        with clock.stage("audit"):
            lake.append("audit", "erasures", pa.Table.from_pylist([audit], AUDIT_SCHEMA))
        audit["stage_seconds"] = clock.rounded()
        if found:
            raise ErasureError(
                f"erasure {request_id} of {subject.name}: keys still found in {found}; older versions are kept while "
                "the retention window holds them: rerun with --retention-hours 0 or wait for the window to pass"
            )
        return audit


def find_keys(
    targets: list[Target], keys: list[str], lake: LakeResource, schema_lookup: SchemaLookup | None = None
) -> dict[str, int]:
    """Rows about the keys in every target table and every table version that can still be read, found by
    reading each version whole and decoding the archive: the independent proof that tests and audits
    use; its cost grows with the archive and its history, so `erase` verifies through `_still_held`."""
    secret = pii_key()
    wanted = set(keys)
    found: dict[str, int] = {}
    for target in targets:
        stored = target.stored(keys, secret)
        for layer in ERASED_LAYERS:
            table = lake.table(layer, target.contract.name)
            if table is None:
                continue
            for version in range(table.version() + 1):
                try:
                    table.load_as_version(version)
                    rows = table.to_pyarrow_dataset().to_table()
                except Exception:  # the version's files were vacuumed: nothing of it can be read any more
                    continue
                if layer == "landing":
                    hits = sum(target.named_by_bytes(r, schema_lookup) in wanted for r in landing_records(rows))
                else:
                    hits = sum(
                        _names_a_key(target, layer, row, wanted, stored, schema_lookup) for row in rows.to_pylist()
                    )
                if hits:
                    found[f"{layer}/{target.contract.name}@v{version}"] = hits
    return found


def _names_a_key(
    target: Target, layer: str, row: dict, wanted: set[str], stored: set[tuple], schema_lookup: SchemaLookup | None
) -> bool:
    if layer == "quarantine":
        record = LandingRecord(row["_topic"], row["_partition"], row["_offset"], 0, row["key"], row["value"], ())
        return target.named_by_bytes(record, schema_lookup) in wanted
    return tuple(row[name] for name in target.fields) in stored
