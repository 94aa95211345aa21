"""Two `hlsforge-operator` processes on the emulated cluster: one holds the Lease and runs,
the other stands by. `kill -9` of the active one mid-transcode (and mid-slice) leaves the
standby to finish the resource from what the cluster holds: no Job made twice, no phase
going back, the `videos` record ending `succeeded`, the progress carrying on."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from conftest import ClipFactory
from helpers import Api, Signup, create_and_upload
from hlsforge_dev import JOBS, PODS, VIDEOTRANSCODES, EmulatedCluster, JobRunner, PodExit, PodRun
from hlsforge_dev.loopback import free_port
from hlsforge_dev.simulated import stored_slice, worker_message
from hlsforge_dev.stack import wait_until
from kopf_cluster import phase_of, wait_phase

NAMESPACE = "default"
LEASES = "coordination.k8s.io/v1/leases"
LEASE = "hlsforge-operator"
LIFECYCLE = ["Pending", "Probing", "Queued", "Transcoding", "Packaging", "Succeeded"]
OPERATOR = Path(sys.executable).parent / "hlsforge-operator"


class Operator(subprocess.Popen[bytes]):
    liveness_port: int
    metrics_port: int

    def get(self, path: str) -> httpx.Response | None:
        port = self.metrics_port if path == "/metrics" else self.liveness_port
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"http://127.0.0.1:{port}{path}")
        return None


@contextlib.contextmanager
def operators(env: dict[str, str], log_dir: Path, *names: str) -> Iterator[dict[str, Operator]]:
    """One `hlsforge-operator` process per name (its Lease identity), by name."""
    running: dict[str, Operator] = {}
    try:
        for name in names:
            liveness, metrics = free_port(), free_port()
            own = {"HLSFORGE_LEASE__IDENTITY": name, "HLSFORGE_LIVENESS_PORT": str(liveness),
                   "HLSFORGE_METRICS_PORT": str(metrics)}  # fmt: skip
            with (log_dir / f"{name}.log").open("wb") as log:
                running[name] = Operator([str(OPERATOR)], env={**env, **own}, stdout=log,
                                         stderr=subprocess.STDOUT)  # fmt: skip
            running[name].liveness_port, running[name].metrics_port = liveness, metrics
        yield running
    finally:
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def logs(log_dir: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(log_dir.glob("*.log")))


def holder(cluster: EmulatedCluster) -> str | None:
    found = cluster.find(LEASES, NAMESPACE, LEASE)
    return None if found is None else found["spec"].get("holderIdentity")


class PhaseRecorder:
    """Every phase the resource shows, in order, polled in a thread."""

    def __init__(self, cluster: EmulatedCluster, name: str) -> None:
        self.phases: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(cluster, name))

    def _poll(self, cluster: EmulatedCluster, name: str) -> None:
        while not self._stop.wait(0.02):
            phase = phase_of(cluster.find(VIDEOTRANSCODES, NAMESPACE, name))
            if phase and (not self.phases or self.phases[-1] != phase):
                self.phases.append(phase)

    def __enter__(self) -> "PhaseRecorder":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def jobs_by_uid(cluster: EmulatedCluster, video: str) -> dict[str, str]:
    found = cluster.list(JOBS, NAMESPACE, labels=f"hlsforge.dev/transcode={video}")
    return {job["metadata"]["name"]: job["metadata"]["uid"] for job in found}


def pods_per_job_and_index(cluster: EmulatedCluster) -> Counter[tuple[str, str]]:
    return Counter(
        (pod["metadata"]["labels"]["job-name"],
         pod["metadata"]["labels"].get("batch.kubernetes.io/job-completion-index", "-"))
        for pod in cluster.list(PODS, NAMESPACE)
    )  # fmt: skip


def slow_pods(s3: Any, seconds: float) -> Callable[[PodRun], Any]:
    """Probes and audio at once; each rendition or slice takes `seconds`."""

    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("probe", "audio"):
            return PodExit(0, worker_message(run))
        await asyncio.sleep(seconds)
        if "--slice-seconds" in run.args:
            return PodExit(0, await asyncio.to_thread(stored_slice, run, s3))
        return PodExit(0, worker_message(run))

    return run_pod


@pytest.fixture
def operator_process_env(api: Api, operator_env: dict[str, str]) -> dict[str, str]:
    settings = api.settings
    assert settings.service_token is not None
    return {**os.environ, **operator_env,
            "HLSFORGE_NAMESPACES": json.dumps([NAMESPACE]),
            "HLSFORGE_MONGODB_URI": settings.mongodb_uri.get_secret_value(),
            "HLSFORGE_MONGODB_DATABASE": settings.mongodb_database,
            "HLSFORGE_API_URL": api.url,
            "HLSFORGE_SERVICE_TOKEN": settings.service_token.get_secret_value()}  # fmt: skip


@pytest.mark.parametrize(
    ("sliced", "seconds"),
    [(False, 4.0), (True, 1.0)],
    ids=["mid-transcode", "mid-slice"],
)
def test_killing_the_active_operator_leaves_the_standby_to_finish(
    sliced: bool, seconds: float, api: Api, signup: Signup, clip: ClipFactory,
    cluster: EmulatedCluster, s3: Any, operator_process_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    env = dict(operator_process_env)
    if sliced:  # the simulated source is 60 s: 6 s slices, the one-segment lead-in first
        env |= {"HLSFORGE_SLICING__AUTO_THRESHOLD_SECONDS": "30",
                "HLSFORGE_SLICING__AUTO_SECONDS": "6"}  # fmt: skip
    token = signup()
    sock = socketio.SimpleClient()
    with (
        JobRunner(cluster, run_pod=slow_pods(s3, seconds)),
        operators(env, tmp_path, "op-a", "op-b") as running,
        api.client(token) as client,
    ):
        first = wait_until(lambda: holder(cluster), "lease holder")
        video_id = create_and_upload(client, clip("trip.mp4", size="320x180", seconds=1))
        name = f"video-{video_id}"
        sock.connect(api.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
        with PhaseRecorder(cluster, name) as recorder:
            kind = "slice" if sliced else "rendition"

            def encoding() -> bool:
                body = cluster.get(VIDEOTRANSCODES, NAMESPACE, name)
                pods = cluster.list(PODS, NAMESPACE, labels=f"hlsforge.dev/transcode={name}")
                return body.get("status", {}).get("phase") == "Transcoding" and any(
                    p["status"].get("phase") == "Running"
                    and p["metadata"]["labels"].get("hlsforge.dev/role") == "rendition"
                    for p in pods
                )

            wait_until(encoding, f"running {kind} pod")
            before = cluster.get(VIDEOTRANSCODES, NAMESPACE, name)["status"]
            jobs_before = jobs_by_uid(cluster, name)
            running[first].send_signal(signal.SIGKILL)
            running[first].wait()
            survivor = next(n for n in running if n != first)
            wait_until(lambda: holder(cluster) == survivor, "takeover", timeout=30)
            wait_phase(cluster, name, "Succeeded", "Failed")
        events = []
        with contextlib.suppress(socketio.exceptions.TimeoutError):
            while True:
                events.append(sock.receive(timeout=3))
        sock.disconnect()
        video = client.get(f"/api/v1/videos/{video_id}").json()
        assert running[survivor].poll() is None, logs(tmp_path)
        lease = cluster.get(LEASES, NAMESPACE, LEASE)["spec"]  # (released on the way out)

    status = cluster.get(VIDEOTRANSCODES, NAMESPACE, name)["status"]
    assert status["phase"] == "Succeeded", (status, logs(tmp_path))
    assert before["phase"] == "Transcoding"
    assert before["progress"] < status["progress"] == 100
    order = [LIFECYCLE.index(phase) for phase in recorder.phases]
    assert order == sorted(order), recorder.phases
    jobs_after = jobs_by_uid(cluster, name)
    assert {k: jobs_after[k] for k in jobs_before} == jobs_before  # none deleted and remade
    assert set(pods_per_job_and_index(cluster).values()) == {1}  # no pod, slice or Job twice
    if sliced:
        assert all(r.get("completedSlices") is not None for r in status["renditions"]
                   if r["name"] != "audio-0")  # fmt: skip
    assert video["phase"] == "succeeded", video
    succeeded = [p for e, p in events if e == "transcode.succeeded"]
    assert [p["videoId"] for p in succeeded] == [video_id]  # the survivor's events reach us
    assert (lease["holderIdentity"], lease["leaseTransitions"]) == (survivor, 1)
    assert f"holding lease {LEASE} as {survivor}" in (tmp_path / f"{survivor}.log").read_text()


def test_a_standby_answers_its_probes_and_a_clean_stop_hands_over_at_once(
    cluster: EmulatedCluster, operator_process_env: dict[str, str], tmp_path: Path
) -> None:
    # A minute-long Lease: only a release lets the standby take over within the wait below.
    env = operator_process_env | {"HLSFORGE_LEASE__DURATION_SECONDS": "60",
                                  "HLSFORGE_LEASE__RENEW_DEADLINE_SECONDS": "50"}  # fmt: skip
    active_gauge = "hlsforge_operator_active {}"
    with operators(env, tmp_path, "op-a", "op-b") as running:
        first = wait_until(lambda: holder(cluster), "lease holder")
        survivor_name = next(n for n in running if n != first)
        survivor = running[survivor_name]
        healthz = wait_until(lambda: survivor.get("/healthz"), "standby liveness", timeout=30)
        assert healthz.json() == {"standby": True}
        assert active_gauge.format(0.0) in survivor.get("/metrics").text  # type: ignore[union-attr]
        running[first].send_signal(signal.SIGTERM)  # what a rolling update sends
        assert running[first].wait(timeout=30) == 0
        wait_until(lambda: holder(cluster) == survivor_name, "takeover", timeout=30)

        def active_metrics() -> bool:
            response = survivor.get("/metrics")
            return response is not None and active_gauge.format(1.0) in response.text

        wait_until(active_metrics, "the active replica's metrics", timeout=30)
    assert "lost the lease" not in (tmp_path / f"{first}.log").read_text()


def test_an_active_operator_whose_lease_is_taken_exits_at_once(
    cluster: EmulatedCluster, operator_process_env: dict[str, str], tmp_path: Path
) -> None:
    """The guard against two active replicas: a holder that finds another named in the Lease
    (a partition healed, a clock run wild) stops before writing anything more."""
    with operators(operator_process_env, tmp_path, "op-a") as running:
        wait_until(lambda: holder(cluster) == "op-a", "lease holder")
        lease = cluster.get(LEASES, NAMESPACE, LEASE)["spec"]
        taken = {**lease, "holderIdentity": "intruder", "leaseDurationSeconds": 3600}
        cluster.patch(LEASES, NAMESPACE, LEASE, {"spec": taken})
        assert running["op-a"].wait(timeout=30) == 1
    assert "lost the lease" in (tmp_path / "op-a.log").read_text()
    assert holder(cluster) == "intruder"


def test_a_delete_and_a_cancel_made_while_no_operator_is_active_are_carried_out_by_the_standby(
    api: Api, signup: Signup, clip: ClipFactory, cluster: EmulatedCluster, s3: Any,
    operator_process_env: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    env = operator_process_env | {"HLSFORGE_MAX_RUNNING_JOBS": "20"}  # both videos at once
    token = signup()
    sock = socketio.SimpleClient()
    with (
        JobRunner(cluster, run_pod=slow_pods(s3, 60.0), max_parallel=20),  # unfinished by then
        operators(env, tmp_path, "op-a", "op-b") as running,
        api.client(token) as client,
    ):
        first = wait_until(lambda: holder(cluster), "lease holder")
        sock.connect(api.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        deleted, cancelled = (create_and_upload(client, clip(f"{n}.mp4", size="320x180",
                                                             seconds=1)) for n in "dc")  # fmt: skip
        for video_id in (deleted, cancelled):
            assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
        wait_until(lambda: {video_phase(cluster, v) for v in (deleted, cancelled)}
                   == {"Transcoding"}, "both Transcoding")  # fmt: skip
        s3.put_object(Bucket="media", Key=f"videos/{deleted}/360p/seg_00000.m4s", Body=b"x")

        running[first].send_signal(signal.SIGKILL)
        running[first].wait()
        # No operator runs now: the API's writes wait in the cluster for the standby.
        assert client.delete(f"/api/v1/videos/{deleted}").status_code == 204
        assert client.post(f"/api/v1/videos/{cancelled}/cancel").status_code == 202
        wait_until(lambda: cluster.find(VIDEOTRANSCODES, NAMESPACE, f"video-{deleted}") is None,
             "the deleted resource to go", timeout=60)  # fmt: skip
        wait_phase(cluster, f"video-{cancelled}", "Cancelled", timeout=60)
        video = client.get(f"/api/v1/videos/{cancelled}").json()
        events = []
        with contextlib.suppress(socketio.exceptions.TimeoutError):
            while True:
                events.append(sock.receive(timeout=3))
        sock.disconnect()
        assert holder(cluster) != first

    assert video["phase"] == "cancelled", video
    assert s3.list_objects_v2(Bucket="media", Prefix=f"videos/{deleted}/")["KeyCount"] == 0
    assert cluster.list(JOBS, NAMESPACE, labels=f"hlsforge.dev/transcode=video-{deleted}") == []
    told = {p["videoId"] for e, p in events if e == "transcode.cancelled"}
    assert told == {deleted, cancelled}  # from the standby, sent once it had connected


def video_phase(cluster: EmulatedCluster, video_id: str) -> str | None:
    return phase_of(cluster.find(VIDEOTRANSCODES, NAMESPACE, f"video-{video_id}"))
