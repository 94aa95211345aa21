"""Deleting a running pod is graceful, as in Kubernetes: the pod object stays (marked with a
`deletionTimestamp`) until its process has stopped, so "no pods left" means "no worker left"
(the operator's clean-up finalizer waits for exactly that)."""

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hlsforge_dev import JOBS, PODS, EmulatedCluster, JobRunner

# Takes a moment to stop on SIGTERM, and says when it is done (argv[1]).
SLOW_TO_STOP = """
import signal, sys, time
def stop(*_):
    time.sleep(0.5)
    open(sys.argv[1], "w").write("stopped")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
print("working", flush=True)
time.sleep(60)
"""


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def job(name: str, marker: Path) -> dict[str, Any]:
    container = {"name": "worker", "image": "x", "command": [sys.executable, "-c", SLOW_TO_STOP],
                 "args": [str(marker)]}  # fmt: skip
    return {
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0,
                 "template": {"spec": {"restartPolicy": "Never", "containers": [container],
                                       "terminationGracePeriodSeconds": 5}}},
    }  # fmt: skip


def test_a_deleted_jobs_pod_goes_only_once_its_process_has_stopped(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    with JobRunner(cluster):
        cluster.create(JOBS, job("slow", marker), namespace="default")

        def working() -> bool:  # its SIGTERM handler is in place
            names = [p["metadata"]["name"] for p in cluster.list(PODS, "default")]
            logs = cluster.call(lambda: [cluster.store.pod_log("default", n) for n in names])
            return any(log is not None and b"working" in log.text() for log in logs)

        eventually(working)
        pod = cluster.list(PODS, "default", labels="job-name=slow")[0]["metadata"]["name"]
        cluster.delete(JOBS, "default", "slow", propagation="Background")
        marked = cluster.get(PODS, "default", pod)  # still there, stopping
        assert marked["metadata"]["deletionTimestamp"]
        eventually(lambda: cluster.find(PODS, "default", pod) is None)
        assert marker.read_text() == "stopped"  # the pod went after its process stopped
