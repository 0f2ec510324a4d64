"""Stopping `make dev` and `make soak` stops everything they started (processes in sessions of their own
included), however long their own clean-up takes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.broker import free_port, stop_group

# A group leader like `devstack.dev`: its child runs in a session of its own, and on SIGTERM the leader
# takes `CLEANUP_S` to stop it (dagster dev takes up to 40 s), then exits.
LEADER = """
import signal, subprocess, sys, time
def stop(*_):
    time.sleep(float(sys.argv[1]))
    child.terminate(); child.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)  # before the pid is printed: the test stops the leader right after
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize(("cleanup_s", "grace_s", "child_survives"), [(12, 0.5, True), (12, 15, False)])
def test_stopping_a_group_waits_for_its_leader_to_stop_the_children_of_its_own(cleanup_s, grace_s, child_survives):
    """`make soak` stopped `devstack.dev` with the default grace and left dagster dev running: the
    leader was killed in the middle of stopping it (after the grace and 10 s more). The grace must cover
    the leader's own clean-up."""
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER, str(cleanup_s)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    stop_group(leader, grace_s=grace_s)
    try:
        assert alive(child) == child_survives
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_make_dev_makes_a_data_directory_that_does_not_exist_yet(tmp_path: Path):
    """`make soak` runs `devstack.dev --data-dir .data/soak` with the Makefile's Dagster home and lake
    elsewhere: dev opened the broker's log in a directory nobody had made, and exited at once."""
    data_dir = tmp_path / "not" / "made"
    dev = subprocess.Popen(
        [sys.executable, "-m", "devstack.dev", "--data-dir", str(data_dir), "--port", str(free_port())],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "PLATFORM_LAKE_ROOT": str(tmp_path / "lake")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert dev.stdout is not None
        first = next((line for line in iter(dev.stdout.readline, "") if not line.startswith("%")), "")
        assert first.startswith("broker "), first + dev.stdout.read(3000)
        assert (data_dir / "tansu.log").exists()
    finally:
        stop_group(dev, grace_s=60)
