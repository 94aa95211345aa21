"""Operator failover benchmark (issue 13): two `hlsforge-operator` processes on the emulated
cluster, one active (the Lease's holder) and one standing by. Each round stops the active
one and, once it has exited, creates a VideoTranscode; from the signal, it measures

  lease:  until the standby holds the Lease,
  action: until the standby's first action, the new resource's probe Job,

then starts a fresh process as the next standby. Rounds alternate `kill -9` (a lost node:
the standby waits out the Lease) with SIGTERM (a rolling update: the Lease is released), the
baseline of the same run. Jobs complete at once (a simulated worker result). Times are taken
by a listener in the emulated API server: no polling.

    .venv/bin/python bench/failover.py [--rounds 5]
"""

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hlsforge_dev import SECRETS, VIDEOTRANSCODES, EmulatedCluster, JobRunner, stack
from hlsforge_dev.jobs import completes_at_once
from hlsforge_dev.loopback import free_port
from hlsforge_dev.simulated import worker_message
from hlsforge_dev.store import Change

from transcode_operator.settings import LeaseSettings

NAMESPACE = "default"
GOAL_SECONDS = 15  # the issue's: the standby takes over within this of the active one's loss
OPERATOR = Path(sys.executable).parent / "hlsforge-operator"


class Clock:
    """When the Lease got each holder, and when each probe Job appeared."""

    def __init__(self) -> None:
        self.holders: dict[str, float] = {}
        self.probes: dict[str, float] = {}
        self.changed = threading.Condition()

    def notice(self, change: Change) -> None:
        now = time.monotonic()
        plural, obj = change.resource.plural, change.obj
        with self.changed:
            if plural == "leases" and (holder := (obj.get("spec") or {}).get("holderIdentity")):
                self.holders.setdefault(holder, now)
            elif plural == "jobs" and change.type == "ADDED":
                self.probes.setdefault(obj["metadata"]["name"].removesuffix("-probe"), now)
            self.changed.notify_all()

    def wait(self, found: dict[str, float], key: str, timeout: float = 60) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: key in found, timeout):
                raise TimeoutError(f"{key} did not happen within {timeout} s")
            return found[key]


def resource(name: str) -> dict[str, object]:
    return {
        "apiVersion": "hlsforge.dev/v1alpha1",
        "kind": "VideoTranscode",
        "metadata": {"name": name},
        "spec": {
            "source": {"bucket": "uploads", "key": f"{name}.mp4"},
            "output": {"bucket": "media", "prefix": f"videos/{name}"},
        },
    }


class Operators:
    """`hlsforge-operator` processes named op-1, op-2, ... (their Lease identities)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> str:
        name = f"op-{len(self.running) + 1}"
        own = {"HLSFORGE_LEASE__IDENTITY": name, "HLSFORGE_LIVENESS_PORT": str(free_port()),
               "HLSFORGE_METRICS_PORT": str(free_port())}  # fmt: skip
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen([str(OPERATOR)], env={**self.env, **own},
                                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        return name

    def standing_by(self, name: str, timeout: float = 30) -> None:
        """Until `name` has seen the Lease held by another (its log says so)."""
        deadline = time.monotonic() + timeout
        while "standing by" not in (self.log_dir / f"{name}.log").read_text():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} is not standing by")
            time.sleep(0.05)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="of each kind")
    options = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    clock = Clock()
    results: dict[str, list[tuple[float, float]]] = {"kill -9": [], "SIGTERM": []}
    with (
        stack.s3(None, free_port()) as (endpoint, keys),  # make dev's moto, with the buckets
        tempfile.TemporaryDirectory() as tmp,
        EmulatedCluster() as cluster,
    ):
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hlsforge-s3"},
                  "stringData": {"accessKeyId": keys["AWS_ACCESS_KEY_ID"],
                                 "secretAccessKey": keys["AWS_SECRET_ACCESS_KEY"]}}  # fmt: skip
        cluster.create(SECRETS, secret, namespace=NAMESPACE)
        cluster.call(lambda: cluster.store.listeners.append(clock.notice))
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kc")
        env = {**os.environ, **keys, "AWS_ENDPOINT_URL": endpoint, "KUBECONFIG": str(kubeconfig),
               "HLSFORGE_NAMESPACES": f'["{NAMESPACE}"]'}  # fmt: skip
        operators = Operators(env, Path(tmp))
        with JobRunner(cluster, run_pod=completes_at_once(worker_message)):
            try:
                active = operators.start()
                clock.wait(clock.holders, active)
                for round_number in range(2 * options.rounds):
                    how = "kill -9" if round_number % 2 == 0 else "SIGTERM"
                    standby = operators.start()
                    operators.standing_by(standby)
                    time.sleep(1)  # the standby has timed the Lease's last renewals
                    name = f"round-{round_number}"
                    stopped = time.monotonic()
                    process = operators.running[active]
                    process.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
                    process.wait(timeout=30)  # a stopping replica may still act: not counted
                    cluster.create(VIDEOTRANSCODES, resource(name), namespace=NAMESPACE)
                    leased = clock.wait(clock.holders, standby) - stopped
                    acted = clock.wait(clock.probes, name) - stopped
                    results[how].append((leased, acted))
                    print(f"{how:8} round {round_number // 2 + 1}: lease {leased:5.2f} s, "
                          f"first action {acted:5.2f} s", flush=True)  # fmt: skip
                    active = standby
            finally:
                operators.stop_all()

    lease = LeaseSettings()
    print(f"\nLease: duration {lease.duration_seconds} s, renewed every "
          f"{lease.renew_seconds:g} s, a standby looks every {lease.retry_seconds:g} s; "
          f"medians of {options.rounds}:")  # fmt: skip
    medians = {how: tuple(statistics.median(r[i] for r in rounds) for i in (0, 1))
               for how, rounds in results.items()}  # fmt: skip
    for how, (leased, acted) in medians.items():
        print(f"  {how:8} lease {leased:5.2f} s, first action {acted:5.2f} s")
    kill, clean = medians["kill -9"][1], medians["SIGTERM"][1]
    print(f"  first action, kill -9 / SIGTERM: {kill / clean:.1f}x; "
          f"kill -9 / the {GOAL_SECONDS} s goal: {kill / GOAL_SECONDS:.2f} "
          f"({'met' if kill <= GOAL_SECONDS else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
