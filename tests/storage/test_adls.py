"""The ADLS Gen2 provisioning plan and calls (`python -m cli provision-adls`), without Azure."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.unit


def test_adls_plan_gives_readers_read_only_access_to_the_published_layers():
    from cli.adls import layer_acls, merge_acl, parse_lake_root

    readers = "11111111-2222-3333-4444-555555555555"
    plan = layer_acls(readers)
    assert set(plan) >= {"landing", "quarantine", "raw", "current", "history", "scd2", "marts"}
    assert "snapshot" not in plan, "snapshots live in landing: no directory of their own"
    for layer, acl in plan.items():
        entries = acl.split(",")
        assert {"user::rwx", "group::---", "other::---", "default:other::---"} <= set(entries), layer
        if layer in ("current", "history", "scd2", "marts"):
            assert f"group:{readers}:r-x" in entries and f"default:group:{readers}:r-x" in entries
            assert "mask::r-x" in entries and "default:mask::r-x" in entries
        else:
            assert readers not in acl, f"{layer} holds PII in clear or unnamed fields: no readers"
    assert (
        merge_acl("user::rwx,group::r-x,other::---", [f"group:{readers}:--x"])
        == f"user::rwx,group::r-x,group:{readers}:--x,mask::r-x,other::---"
    )
    assert parse_lake_root("abfss://lake@acct.dfs.core.windows.net/a/b").path == "a/b"
    with pytest.raises(ValueError):
        layer_acls(readers, readable_layers=["gold"])
    with pytest.raises(ValueError):
        parse_lake_root("s3://bucket/lake")


def test_adls_provisioning_creates_each_layer_once_and_sets_its_acl():
    """Against a recording stand-in for the SDK client; the real DFS endpoint is not emulated anywhere."""
    from azure.core.exceptions import ResourceExistsError

    from cli.adls import layer_acls, parse_lake_root, provision_lake

    class Directory:
        def __init__(self, store: Service, path: str):
            self.store, self.path = store, path

        def create_directory(self, **kwargs: Any) -> None:
            if self.path in self.store.acls:
                raise ResourceExistsError("exists")
            self.store.acls[self.path] = "user::rwx,group::r-x,other::---"

        def get_access_control(self) -> dict[str, str]:
            return {"acl": self.store.acls[self.path]}

        def set_access_control(self, acl: str) -> None:
            self.store.acls[self.path] = acl

    class Service:
        def __init__(self) -> None:
            self.acls: dict[str, str] = {"/": "user::rwx,group::r-x,other::---"}
            self.file_systems: list[str] = []

        def get_file_system_client(self, name: str) -> Service:
            self.file_systems.append(name)
            return self

        def create_file_system(self) -> None:
            if len(self.file_systems) > 1:
                raise ResourceExistsError("exists")

        def get_directory_client(self, path: str) -> Directory:
            return Directory(self, path)

    readers = "readers-oid"
    location = parse_lake_root("abfss://lake@acct.dfs.core.windows.net/platform/cdp")
    service = Service()
    first = provision_lake(service, location, layer_acls(readers), [readers])
    again = provision_lake(service, location, layer_acls(readers), [readers])
    assert [d.path for d in first if d.created] == [d.path for d in first]
    assert not any(d.created for d in again)
    assert service.acls["platform/cdp/current"] == layer_acls(readers)["current"]
    for traversed in ("/", "platform", "platform/cdp"):
        assert f"group:{readers}:--x" in service.acls[traversed].split(",")
        assert "default:" not in service.acls[traversed]
