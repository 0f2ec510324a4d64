"""A reader of a lake table is not broken by an erasure that vacuums the files of the version it loaded."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from resources.lake import LakeResource

pytestmark = pytest.mark.unit


class ErasedBetweenLoadAndRead(LakeResource):
    """Loads a table, then lets an erasure delete a row and vacuum with retention 0 before the caller reads."""

    def table(self, layer: str, entity: str) -> DeltaTable | None:
        loaded = super().table(layer, entity)
        writer = LakeResource(root=self.root)
        if writer.delete_where(layer, entity, "k = 'erased'"):
            erased = writer.table(layer, entity)
            assert erased is not None
            erased.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        return loaded


def test_a_read_whose_files_an_erasure_vacuumed_reads_the_newest_version(tmp_path):
    root = str(tmp_path / "lake")
    LakeResource(root=root).append("raw", "people", pa.table({"k": ["kept", "erased"]}))
    LakeResource(root=root).append("raw", "people", pa.table({"k": ["later"]}))

    rows = ErasedBetweenLoadAndRead(root=root).read("raw", "people")

    assert sorted(rows.column("k").to_pylist()) == ["kept", "later"]
