"""Operator benchmark: the real operator process against the emulated cluster, with every
Job completed at once by the JobRunner (a simulated worker result), so only the operator's
own work is measured.

  (a) burst: 200 VideoTranscodes created at once; seconds until all their Jobs exist
  (b) steady: 20 resources/s for 10 s; per resource, create → all-Jobs latency p50/p99
  (c) the operator's peak RSS (VmHWM)

Each resource uses the default ladder on a simulated 1080p source: 1 probe + 4 rendition Jobs.

    .venv/bin/python bench/operator.py [--burst 200] [--rate 20] [--seconds 10]
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from hlsforge_dev import JOBS, SECRETS, VIDEOTRANSCODES, EmulatedCluster, JobRunner
from hlsforge_dev.jobs import completes_at_once
from hlsforge_dev.simulated import worker_message
from hlsforge_dev.store import Change
from moto.server import ThreadedMotoServer

JOBS_PER_RESOURCE = 5
NAMESPACE = "default"


class JobClock:
    """When each resource's last Job appeared (a store listener: no polling)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.done: dict[str, float] = {}
        self.all_done = threading.Condition()

    def notice(self, change: Change) -> None:
        if change.type != "ADDED" or change.resource.plural != "jobs":
            return
        resource = change.obj["metadata"]["labels"]["hlsforge.dev/transcode"]
        self.counts[resource] = self.counts.get(resource, 0) + 1
        if self.counts[resource] == JOBS_PER_RESOURCE:
            with self.all_done:
                self.done[resource] = time.monotonic()
                self.all_done.notify_all()

    def wait(self, names: list[str], timeout: float = 60) -> None:
        with self.all_done:
            if not self.all_done.wait_for(lambda: all(n in self.done for n in names), timeout):
                missing = {n: self.counts.get(n, 0) for n in names if n not in self.done}
                raise TimeoutError(f"resources without all their Jobs (name: Jobs): {missing}")


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


@contextmanager
def operator_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    command = [str(Path(sys.executable).parent / "hlsforge-operator")]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    options = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3_server.start()
    host, port = s3_server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}  # fmt: skip
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    s3.create_bucket(Bucket="media")
    clock = JobClock()
    with tempfile.TemporaryDirectory() as tmp, EmulatedCluster() as cluster:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hlsforge-s3"},
                  "stringData": {"accessKeyId": "bench", "secretAccessKey": "bench"}}  # fmt: skip
        cluster.create(SECRETS, secret, namespace=NAMESPACE)
        cluster.call(lambda: cluster.store.listeners.append(clock.notice))
        env = {**os.environ, **aws, "KUBECONFIG": str(cluster.write_kubeconfig(Path(tmp) / "kc")),
               "HLSFORGE_MAX_RUNNING_JOBS": "100000", "HLSFORGE_METRICS_PORT": "0",
               "HLSFORGE_LIVENESS_PORT": "0"}  # fmt: skip
        runner = JobRunner(cluster, run_pod=completes_at_once(worker_message), max_parallel=10_000)
        with runner, operator_process(env) as operator:
            time.sleep(3)  # let the operator connect and list before the clock starts
            burst = [f"burst-{i:04d}" for i in range(options.burst)]
            start = time.monotonic()
            for name in burst:
                cluster.create(VIDEOTRANSCODES, resource(name), namespace=NAMESPACE)
            clock.wait(burst)
            burst_seconds = max(clock.done[n] for n in burst) - start

            created: dict[str, float] = {}
            interval = 1 / options.rate
            first = time.monotonic()
            for i in range(int(options.rate * options.seconds)):
                time.sleep(max(0.0, first + i * interval - time.monotonic()))
                name = f"steady-{i:04d}"
                created[name] = time.monotonic()
                cluster.create(VIDEOTRANSCODES, resource(name), namespace=NAMESPACE)
            clock.wait(list(created))
            rss = peak_rss_mib(operator.pid)
            jobs = len(cluster.list(JOBS, NAMESPACE))
    s3_server.stop()

    latencies = sorted(clock.done[n] - t for n, t in created.items())
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)))]
    print(f"burst:  {options.burst} resources ({options.burst * JOBS_PER_RESOURCE} Jobs) "
          f"created at once: all Jobs exist after {burst_seconds:.1f} s "
          f"({options.burst / burst_seconds:.1f} resources/s)")  # fmt: skip
    print(f"steady: {len(created)} resources at {options.rate:g}/s: create → all Jobs "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")  # fmt: skip
    print(f"operator peak RSS: {rss:.0f} MiB; {jobs} Jobs in the cluster at the end")


if __name__ == "__main__":
    main()
