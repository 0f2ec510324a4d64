"""Runs one landing drain in its own process and SIGKILLs itself at a chosen point of the cycle.

    python tests/landing_crash_worker.py CONTRACT_JSON BOOTSTRAP GROUP_PREFIX LAKE_ROOT STAGE N
kills the process the N-th time the landing cycle reaches STAGE (consumed | written | committed);
STAGE `none` lets the drain finish.
"""

import json
import os
import signal
import sys

from platform_assets.landing import drain_to_landing
from platform_assets.lib.contract import parse_contract
from resources.kafka import KafkaResource
from resources.lake import LakeResource


def main() -> None:
    document, bootstrap, group_prefix, lake_root, stage, count = sys.argv[1:7]
    seen = {"n": 0}

    def on_stage(reached: str) -> None:
        if reached == stage:
            seen["n"] += 1
            if seen["n"] == int(count):
                os.kill(os.getpid(), signal.SIGKILL)

    report = drain_to_landing(
        parse_contract(json.loads(document)),
        KafkaResource(bootstrap_servers=bootstrap, group_prefix=group_prefix),
        LakeResource(root=lake_root),
        batch_records=25,
        on_stage=on_stage,
    )
    print(json.dumps({"records": report.records}), flush=True)
    os._exit(0)  # skip interpreter teardown: nothing is left to flush, and native libraries are slow to unload


if __name__ == "__main__":
    main()
