"""Provision the ADLS Gen2 file system of the lake: one directory per layer, each with its POSIX ACL.

Run once per environment by someone allowed to manage ACLs (Storage Blob Data Owner on the account, or
the owner of the file system), against an account with the hierarchical namespace enabled:

    PLATFORM_LAKE_ROOT=abfss://lake@myaccount.dfs.core.windows.net/change-data-platform \\
    .venv/bin/python -m cli provision-adls --readers-group <object id of the readers' Entra group>

It is idempotent: the file system and directories are created when missing, and every run sets each
layer's ACL again (access and default entries), so re-running converges on the plan below.

Access model. The platform's identities (code server, runs, Spark) write through RBAC (Storage Blob Data
Contributor), which ADLS checks before any ACL. ACLs add read-only access for a readers group on the
layers without personal data in clear (`current`, `history`, `marts` by default): `r-x` on the layer
directory and, as a default ACL, on everything created below it later, plus `--x` (traverse only) on the
file system root and on each directory of the lake path, which lists nothing. `landing` and `quarantine`
hold PII in clear, `raw` keeps unnamed fields as sent: no ACL reader there.

Verified only against real ADLS Gen2: Azurite has no DFS endpoint (directories and ACLs do not exist
in the Blob API), so the tests here check the plan (`layer_acls`, `merge_acl`) and the calls, not Azure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from resources.lake import DEFAULT_LAKE_ROOT, LAYERS

READABLE_LAYERS = ("current", "history", "scd2", "marts")
OWNER_ONLY = ("user::rwx", "group::---", "other::---")


@dataclass(frozen=True)
class LakeLocation:
    """Where an `abfss://` lake root lives: account, file system (container) and path inside it."""

    account: str
    file_system: str
    path: str

    @property
    def account_url(self) -> str:
        return f"https://{self.account}.dfs.core.windows.net"


def parse_lake_root(root: str) -> LakeLocation:
    """`abfss://<file system>@<account>.dfs.core.windows.net/<path>` -> its parts."""
    parts = urlsplit(root)
    host = parts.hostname or ""
    if parts.scheme not in ("abfss", "abfs") or not parts.username or ".dfs." not in host:
        raise ValueError(
            f"expected an ADLS Gen2 root abfss://<file system>@<account>.dfs.core.windows.net/<path>, got {root}"
        )
    return LakeLocation(account=host.split(".", 1)[0], file_system=parts.username, path=parts.path.strip("/"))


def _entry_key(entry: str) -> tuple[str, str, str]:
    """(scope, type, id) of an ACL entry: `default:group:<id>:r-x` -> ("default", "group", "<id>")."""
    fields = entry.split(":")
    scope = "default" if fields[0] == "default" else "access"
    if scope == "default":
        fields = fields[1:]
    if len(fields) != 3 or len(fields[2]) != 3:
        raise ValueError(f"not a POSIX ACL entry: `{entry}` (expected [default:]type:id:rwx)")
    return scope, fields[0], fields[1]


def _union(permissions: Iterable[str]) -> str:
    granted = set("".join(permissions))
    return "".join(flag if flag in granted else "-" for flag in "rwx")


def merge_acl(existing: str, entries: Sequence[str]) -> str:
    """`existing` with `entries` added or replacing the entry of the same scope, type and id.

    The mask of each scope that has named entries is recomputed as the union of its group-class entries
    (named users, named groups, owning group), so a named entry's permissions are not masked away. The
    result lists entries in the usual order (user, named users, group, named groups, mask, other).
    """
    merged: dict[tuple[str, str, str], str] = {}
    for entry in [e.strip() for e in existing.split(",") if e.strip()] + list(entries):
        merged[_entry_key(entry)] = entry.rsplit(":", 1)[1]
    for scope in ("access", "default"):
        group_class = [
            perms
            for (s, kind, ident), perms in merged.items()
            if s == scope and (kind == "group" or (kind == "user" and ident))
        ]
        if any(s == scope and kind in ("user", "group") and ident for (s, kind, ident) in merged):
            merged[(scope, "mask", "")] = _union(group_class)
    rank = {"user": 0, "group": 2, "mask": 4, "other": 5}

    def order(key: tuple[str, str, str]) -> tuple[int, int, str]:
        scope, kind, ident = key
        return (scope == "default", rank[kind] + (1 if ident else 0), ident)

    return ",".join(
        f"{'default:' if scope == 'default' else ''}{kind}:{ident}:{merged[(scope, kind, ident)]}"
        for scope, kind, ident in sorted(merged, key=order)
    )


def layer_acls(
    readers_group: str | None,
    readable_layers: Iterable[str] = READABLE_LAYERS,
    layers: Iterable[str] = LAYERS,
    writers_group: str | None = None,
) -> dict[str, str]:
    """The ACL (access and default entries) of each layer directory.

    Owner only everywhere; `readers_group` (an Entra object id) gets `r-x` on `readable_layers`;
    `writers_group`, for writers without RBAC, gets `rwx` on every layer.
    """
    readable, layers = set(readable_layers), tuple(layers)
    unknown = readable - set(layers)
    if unknown:
        raise ValueError(f"readable layers {sorted(unknown)} are not lake layers ({', '.join(layers)})")
    plan = {}
    for layer in layers:
        named = []
        if readers_group and layer in readable:
            named.append(f"group:{readers_group}:r-x")
        if writers_group:
            named.append(f"group:{writers_group}:rwx")
        access = [*OWNER_ONLY, *named]
        plan[layer] = merge_acl("", [*access, *(f"default:{entry}" for entry in access)])
    return plan


@dataclass(frozen=True)
class ProvisionedDirectory:
    path: str
    created: bool
    acl: str


def provision_lake(
    service: Any,
    location: LakeLocation,
    acls: Mapping[str, str],
    traverse_groups: Sequence[str] = (),
    apply_to_existing: bool = False,
) -> list[ProvisionedDirectory]:
    """Create the file system and one directory per layer under `location.path`, and set their ACLs.

    `service` is an `azure.storage.filedatalake.DataLakeServiceClient` for `location.account_url`.
    `traverse_groups` get `--x` on the root and each directory of the lake path (reach, not list).
    `apply_to_existing` also replaces the ACL of everything already inside a layer (recursive; slow on
    big trees; without it only new files and directories inherit the layer's default ACL).
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError

    file_system = service.get_file_system_client(location.file_system)
    with contextlib.suppress(ResourceExistsError):
        file_system.create_file_system()

    def ensure_directory(path: str) -> tuple[Any, bool]:
        directory = file_system.get_directory_client(path)
        try:
            directory.create_directory(match_condition=MatchConditions.IfMissing)
            return directory, True
        except ResourceExistsError:
            return directory, False

    done: list[ProvisionedDirectory] = []
    parents = [part for part in location.path.split("/") if part]
    if traverse_groups:
        traverse = [f"group:{group}:--x" for group in traverse_groups]
        root = file_system.get_directory_client("/")
        root.set_access_control(acl=merge_acl(root.get_access_control()["acl"], traverse))
    for depth in range(1, len(parents) + 1):
        path = "/".join(parents[:depth])
        directory, created = ensure_directory(path)
        acl = directory.get_access_control()["acl"]
        if traverse_groups:
            acl = merge_acl(acl, traverse)
            directory.set_access_control(acl=acl)
        done.append(ProvisionedDirectory(path, created, acl))
    for layer, acl in acls.items():
        path = "/".join([*parents, layer])
        directory, created = ensure_directory(path)
        directory.set_access_control(acl=acl)
        if apply_to_existing and not created:
            result = directory.set_access_control_recursive(acl=acl)
            if result.counters.failure_count:
                raise RuntimeError(f"ACL of {path}: {result.counters.failure_count} paths below it were not updated")
        done.append(ProvisionedDirectory(path, created, acl))
    return done


def service_client(location: LakeLocation, environ: Mapping[str, str] | None = None) -> Any:
    """A DataLakeServiceClient for the account: azure-identity's DefaultAzureCredential if installed,
    otherwise the account key in AZURE_STORAGE_ACCOUNT_KEY."""
    from azure.storage.filedatalake import DataLakeServiceClient

    env = os.environ if environ is None else environ
    credential: Any
    try:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    except ImportError:
        credential = env.get("AZURE_STORAGE_ACCOUNT_KEY")
        if not credential:
            raise RuntimeError(
                "no Azure credential: install azure-identity (Entra ID login) or set AZURE_STORAGE_ACCOUNT_KEY"
            ) from None
    return DataLakeServiceClient(location.account_url, credential=credential)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=os.environ.get("PLATFORM_LAKE_ROOT", DEFAULT_LAKE_ROOT))
    parser.add_argument("--readers-group", help="Entra object id of the group that may read the readable layers")
    parser.add_argument("--readable-layers", default=",".join(READABLE_LAYERS))
    parser.add_argument("--writers-group", help="Entra object id of writers that have no RBAC role")
    parser.add_argument("--apply-to-existing", action="store_true", help="also reset ACLs of existing contents")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")


def run(args: argparse.Namespace) -> None:
    location = parse_lake_root(args.root)
    acls = layer_acls(args.readers_group, [x for x in args.readable_layers.split(",") if x], LAYERS, args.writers_group)
    if args.dry_run:
        for layer, acl in acls.items():
            print(f"{location.file_system}/{location.path}/{layer}: {acl}")
        return
    groups = [args.readers_group] if args.readers_group else []
    for directory in provision_lake(service_client(location), location, acls, groups, args.apply_to_existing):
        print(f"{'created' if directory.created else 'exists '} {directory.path}: {directory.acl}")
