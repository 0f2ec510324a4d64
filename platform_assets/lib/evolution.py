"""Which contract changes the tables can follow in place, and which need a rebuild from the archive.

A contract's identity (its key, its sequence and its required fields) is recorded on its raw table;
fields may be added, widened or removed while the entity is live, but a changed key or sequence, or a
field made required, changes the meaning of rows already stored, so it is refused with the way forward.
"""

from __future__ import annotations

from platform_assets.lib.contract import Contract

KEY_PROPERTY = "platform.contract.key"
SEQUENCE_PROPERTY = "platform.contract.sequence"
REQUIRED_PROPERTY = "platform.contract.required"
MIGRATION_HINT = (
    "keep the old definition, or rebuild the entity's tables from the archive with the new contract: "
    "`python -m cli contracts migrate --entity {entity}` (each table is replaced in one commit)"
)


def identity_properties(contract: Contract) -> dict[str, str]:
    """What of the contract the stored rows depend on, as Delta table properties of its raw table."""
    return {
        KEY_PROPERTY: ",".join(contract.key),
        SEQUENCE_PROPERTY: ",".join(contract.sequence),
        REQUIRED_PROPERTY: ",".join(sorted(spec.name for spec in contract.fields if not spec.nullable)),
    }


def breaking_changes(stored: dict[str, str], contract: Contract) -> list[str]:
    """How `contract` breaks the identity its raw table was written with (nothing when none is recorded)."""
    if KEY_PROPERTY not in stored:
        return []
    wanted = identity_properties(contract)
    changes = []
    if stored[KEY_PROPERTY] != wanted[KEY_PROPERTY]:
        changes.append(f"key changed from [{stored[KEY_PROPERTY]}] to [{wanted[KEY_PROPERTY]}]")
    if stored[SEQUENCE_PROPERTY] != wanted[SEQUENCE_PROPERTY]:
        changes.append(f"sequence changed from [{stored[SEQUENCE_PROPERTY]}] to [{wanted[SEQUENCE_PROPERTY]}]")
    was_required = set(filter(None, stored.get(REQUIRED_PROPERTY, "").split(",")))
    newly_required = set(filter(None, wanted[REQUIRED_PROPERTY].split(","))) - was_required
    changes += [f"field `{name}` changed from nullable to nullable: false" for name in sorted(newly_required)]
    return changes


def migration_hint(contract: Contract) -> str:
    return MIGRATION_HINT.format(entity=contract.name)
