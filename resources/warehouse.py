"""The marts warehouse and its all-or-nothing publish.

dbt builds into a private copy of the published DuckDB file; only when every model and every test
of the run has passed is the copy moved over the published file, in one atomic rename. Readers
therefore see the previous complete set of marts until a complete new set exists.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from resources.lake import DEFAULT_LAKE_ROOT, resolve_root


class WarehouseResource(ConfigurableResource):
    """Location of the published marts (a DuckDB file) and the build copies of runs in flight."""

    path: str

    @classmethod
    def from_env(cls) -> WarehouseResource:
        default = f"{resolve_root(os.environ.get('PLATFORM_LAKE_ROOT', DEFAULT_LAKE_ROOT))}/marts/warehouse.duckdb"
        return cls(path=os.environ.get("PLATFORM_WAREHOUSE_PATH", default))

    @property
    def published(self) -> Path:
        return Path(self.path)

    def build_copy(self, run_id: str) -> Path:
        """A private copy of the published marts for one run to build into."""
        # Same file name as the published one: DuckDB names the catalog after the file.
        build = self.published.parent / "_builds" / run_id / self.published.name
        build.parent.mkdir(parents=True, exist_ok=True)
        build.unlink(missing_ok=True)
        if self.published.exists():
            shutil.copyfile(self.published, build)
        return build

    def publish(self, build: Path) -> None:
        os.replace(build, self.published)
        self.discard(build)

    def discard(self, build: Path) -> None:
        shutil.rmtree(build.parent, ignore_errors=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import duckdb

        if not self.published.exists():
            raise FileNotFoundError(f"no marts are published yet at {self.published}; materialize the marts first")
        with duckdb.connect(str(self.published), read_only=True) as connection:
            return connection.sql(sql).fetchall()
