"""The operator end to end: Kopf against the emulated API server, Jobs run by the JobRunner
as real worker processes, outputs in moto S3."""

import asyncio
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import kubernetes
import m3u8
import pytest
import yaml
from conftest import ClipFactory
from hlsforge_dev import JOBS, PODS, VIDEOTRANSCODES, EmulatedCluster, JobRunner, PodExit, PodRun
from hlsforge_dev.loopback import free_port
from hlsforge_dev.simulated import worker_message
from kopf_cluster import LADDER, create, manifest, operator, phase_of, upload, wait_phase
from pymongo import MongoClient

pytestmark = pytest.mark.usefixtures("operator_env")
NAMESPACE = "default"


def apply_yaml(kubeconfig: str, text: str, tmp_path: Path) -> None:
    """`kubectl apply -f` as a user would; the same YAML through the API without kubectl."""
    if shutil.which("kubectl") is None:
        api = kubernetes.config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        body = yaml.safe_load(text)
        kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
            "hlsforge.dev", "v1alpha1", body["metadata"]["namespace"], "videotranscodes", body
        )
        api.close()
        return
    path = tmp_path / "vt.yaml"
    path.write_text(text)
    command = ["kubectl", "--kubeconfig", kubeconfig, "apply", "--validate=false", "-f", str(path)]
    subprocess.run(command, check=True, capture_output=True, text=True)


def test_a_resource_applied_with_kubectl_becomes_a_playable_ladder(
    cluster: EmulatedCluster, paced_runner: JobRunner, s3: Any, clip: ClipFactory, tmp_path: Path,
    operator_env: dict[str, str], mongodb_uri: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """Also: the videos document follows, and an unreachable API stops nothing (nor is it
    an error: the operator retries in the background)."""
    monkeypatch.setenv("HLSFORGE_MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("HLSFORGE_MONGODB_DATABASE", "operator_test")
    monkeypatch.setenv("HLSFORGE_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HLSFORGE_SERVICE_TOKEN", "token")
    metrics_port, liveness_port = free_port(), free_port()
    monkeypatch.setenv("HLSFORGE_METRICS_PORT", str(metrics_port))
    liveness = f"--liveness=http://127.0.0.1:{liveness_port}/healthz"
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    request.addfinalizer(mongo.close)
    videos = mongo["operator_test"]["videos"]
    videos.insert_one({"_id": "vid-1", "title": "cat", "phase": "queued"})
    upload(s3, clip(size="640x360", seconds=6), "u1/cat.mp4")
    seen: list[tuple[str, float]] = []
    with operator(liveness):
        apply_yaml(
            operator_env["KUBECONFIG"], manifest("cat", "u1/cat.mp4", videoId="vid-1"), tmp_path
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = cluster.find(VIDEOTRANSCODES, NAMESPACE, "cat") or {}
            status = body.get("status", {})
            seen.append((status.get("phase", ""), status.get("progress", 0)))
            if status.get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(0.1)
        metrics = urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
        health = urlopen(f"http://127.0.0.1:{liveness_port}/healthz").status
    assert health == 200
    # Counters live as long as the test process: other tests may have added to them.
    created = re.search(r'hlsforge_jobs_created_total\{role="rendition"\} (\S+)', metrics)
    assert created is not None
    assert float(created[1]) >= 2
    assert 'hlsforge_phase_transitions_total{phase="Succeeded"}' in metrics
    events = [
        e for e in cluster.list("v1/events", NAMESPACE) if e["involvedObject"]["name"] == "cat"
    ]
    assert {"Probing", "Queued", "Packaging", "Succeeded"} <= {e["reason"] for e in events}
    for event in events:  # each says what it reports: "Packaging" is not a "Succeeded" event
        assert event["message"].split(":")[0] == event["reason"], event
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert any(0 < progress < 100 for phase, progress in seen if phase == "Transcoding"), seen
    phases = [phase for phase, _ in seen]
    assert phases.index("Probing") < phases.index("Succeeded")
    assert status["progress"] == 100
    assert status["renditionsSummary"] == "3/3"  # the sound is its own rendition
    assert status["source"]["video"]["width"] == 640
    assert status["conditions"][0]["status"] == "True"
    assert status["playback"] == {"masterPlaylist": "videos/cat/master.m3u8",
                                  "thumbnail": "videos/cat/poster.jpg"}  # fmt: skip

    master = m3u8.loads(
        s3.get_object(Bucket="media", Key="videos/cat/master.m3u8")["Body"].read().decode()
    )
    assert sorted(p.uri for p in master.playlists) == ["144p/index.m3u8", "240p/index.m3u8"]
    audio, *videos_ = status["renditions"]
    assert audio["name"] == "audio-0"
    assert [(m.type, m.uri, m.default) for m in master.media] == [
        ("AUDIO", "audio-0/index.m3u8", "YES")
    ]  # fmt: skip
    for rung in status["renditions"]:
        assert rung["phase"] == "Succeeded"
        s3.head_object(Bucket="media", Key=rung["playlist"])
    for rung in videos_:
        info = next(
            p.stream_info for p in master.playlists if p.uri == f"{rung['name']}/index.m3u8"
        )
        assert info.bandwidth == rung["bandwidth"] + audio["bandwidth"]  # with its sound
        assert info.codecs == f"{rung['codecs']},{audio['codecs']}"
        assert info.audio == "aac"
    s3.head_object(Bucket="media", Key="videos/cat/poster.jpg")

    jobs = cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=cat")
    assert sorted(j["metadata"]["name"] for j in jobs) == [
        "cat-144p", "cat-240p", "cat-audio-0", "cat-probe"
    ]  # fmt: skip
    owner = cluster.get(VIDEOTRANSCODES, NAMESPACE, "cat")["metadata"]["uid"]
    assert all(j["metadata"]["ownerReferences"][0]["uid"] == owner for j in jobs)
    pods = cluster.list(PODS, NAMESPACE, labels="hlsforge.dev/transcode=cat")
    assert pods
    assert not any(pod["metadata"].get("finalizers") for pod in pods)  # GC never waits on us

    video = videos.find_one({"_id": "vid-1"})
    assert video is not None
    assert (video["phase"], video["progress"], video["title"]) == ("succeeded", 100, "cat")
    assert video["playback"]["masterPlaylist"] == "videos/cat/master.m3u8"
    assert video["transcode"] == {"namespace": NAMESPACE, "name": "cat"}
    assert errors(caplog) == []


def test_a_corrupt_source_fails_once_with_a_readable_reason(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, tmp_path: Path
) -> None:
    corrupt = tmp_path / "notes.mp4"
    corrupt.write_text("not a video\n" * 100)
    upload(s3, corrupt, "u1/notes.mp4")
    with operator():
        create(cluster, "notes", "u1/notes.mp4")
        status = wait_phase(cluster, "notes", "Failed", "Succeeded")["status"]
    assert status["phase"] == "Failed"
    assert status["message"].startswith("probe failed: the file is not a video")
    assert len(cluster.list(PODS, NAMESPACE, labels="job-name=notes-probe")) == 1  # no retries
    assert cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/role=rendition") == []


def test_an_invalid_spec_is_rejected_with_its_reason(
    cluster: EmulatedCluster, runner: JobRunner
) -> None:
    with operator():
        create(cluster, "bad", "u1/a.mp4", segmentSeconds=5)
        status = wait_phase(cluster, "bad", "Failed", timeout=30)["status"]
    assert "segmentSeconds must be a multiple of gopSeconds" in status["message"]
    assert cluster.list(JOBS, NAMESPACE) == []


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def running_pod(cluster: EmulatedCluster, job: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in cluster.list(PODS, NAMESPACE, labels=f"job-name={job}"):
            if pod.get("status", {}).get("phase") == "Running":
                return str(pod["metadata"]["name"])
        time.sleep(0.05)
    raise TimeoutError(f"no running pod for {job}")


def test_a_killed_rung_is_retried(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, clip: ClipFactory
) -> None:
    upload(s3, clip(size="640x360", seconds=6), "u1/dog.mp4")
    with operator():
        create(cluster, "dog", "u1/dog.mp4")
        assert runner.kill_pod(NAMESPACE, running_pod(cluster, "dog-240p"))
        status = wait_phase(cluster, "dog", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status
    rung = next(r for r in status["renditions"] if r["name"] == "240p")
    assert rung["attempts"] == 2
    assert len(cluster.list(PODS, NAMESPACE, labels="job-name=dog-240p")) == 2


def test_a_restarted_operator_finishes_without_duplicate_jobs(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, clip: ClipFactory
) -> None:
    upload(s3, clip(size="640x360", seconds=6), "u1/owl.mp4")
    with operator():
        create(cluster, "owl", "u1/owl.mp4")
        wait_phase(cluster, "owl", "Transcoding")
    time.sleep(1)  # the Jobs go on while no operator runs
    with operator():
        status = wait_phase(cluster, "owl", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status
    jobs = [
        j["metadata"]["name"]
        for j in cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=owl")
    ]
    assert sorted(jobs) == ["owl-144p", "owl-240p", "owl-audio-0", "owl-probe"]
    for job in jobs:
        assert len(cluster.list(PODS, NAMESPACE, labels=f"job-name={job}")) == 1


def test_deleting_a_running_resource_removes_its_jobs(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, clip: ClipFactory
) -> None:
    upload(s3, clip(size="640x360", seconds=6), "u1/eel.mp4")
    with operator():
        create(cluster, "eel", "u1/eel.mp4")
        wait_phase(cluster, "eel", "Transcoding")
        cluster.delete(VIDEOTRANSCODES, NAMESPACE, "eel")
        cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, "eel", lambda body: body is None)
        deadline = time.monotonic() + 10
        while (
            cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=eel")
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    assert cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=eel") == []
    assert cluster.list(PODS, NAMESPACE, labels="hlsforge.dev/transcode=eel") == []


def test_cleanup_on_delete_removes_the_outputs(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, clip: ClipFactory
) -> None:
    upload(s3, clip(size="640x360", seconds=2), "u1/ant.mp4")
    output = {"bucket": "media", "prefix": "videos/ant", "cleanupOnDelete": True}
    with operator():
        create(cluster, "ant", "u1/ant.mp4", output=output)
        wait_phase(cluster, "ant", "Succeeded")
        assert s3.list_objects_v2(Bucket="media", Prefix="videos/ant/")["KeyCount"] > 0
        cluster.delete(VIDEOTRANSCODES, NAMESPACE, "ant")
        cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, "ant", lambda body: body is None)
    assert s3.list_objects_v2(Bucket="media", Prefix="videos/ant/")["KeyCount"] == 0


def test_cleanup_while_transcoding_stops_the_jobs_first(
    cluster: EmulatedCluster, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The outputs go only once no worker can upload any more: here each rendition "worker"
    uploads a segment as it is stopped, as a real one finishing at that moment would.
    Waiting for that is expected: nothing is logged as an error."""

    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] != "rendition":
            return PodExit(0, worker_message(run))
        try:
            await asyncio.sleep(3600)
        finally:
            rung = run.args[run.args.index("--name") + 1]
            s3.put_object(Bucket="media", Key=f"videos/bee/{rung}/seg_00000.m4s", Body=b"late")
        return PodExit(0, worker_message(run))

    output = {"bucket": "media", "prefix": "videos/bee", "cleanupOnDelete": True}
    with JobRunner(cluster, run_pod=run_pod), operator():
        create(cluster, "bee", "u1/bee.mp4", output=output)
        wait_phase(cluster, "bee", "Transcoding")
        cluster.delete(VIDEOTRANSCODES, NAMESPACE, "bee")
        cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, "bee", lambda body: body is None)
        assert cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=bee") == []
        deadline = time.monotonic() + 10
        while cluster.list(PODS, NAMESPACE, labels="hlsforge.dev/transcode=bee"):
            assert time.monotonic() < deadline, "the pods were not removed"
            time.sleep(0.05)
    assert s3.list_objects_v2(Bucket="media", Prefix="videos/bee/")["KeyCount"] == 0
    assert errors(caplog) == []
    waits = [r for r in caplog.records if "stopping the transcode" in r.getMessage()]
    assert waits
    assert all(r.levelno == logging.INFO for r in waits)


def test_twenty_resources_share_two_job_slots_in_priority_order(
    cluster: EmulatedCluster, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blocker holds both slots until 20 resources wait; then they start one by one,
    higher priority first (same-second ties by name), never more than 2 at a time."""
    monkeypatch.setenv("HLSFORGE_MAX_RUNNING_JOBS", "2")
    release = asyncio.Event()
    started: list[str] = []
    running = peak = 0

    async def run_pod(run: PodRun) -> PodExit:
        nonlocal running, peak
        resource = run.pod["metadata"]["labels"]["hlsforge.dev/transcode"]
        if run.args[0] == "rendition":
            running += 1
            peak = max(peak, running)
            started.append(resource)
            await (release.wait() if resource == "blocker" else asyncio.sleep(0.05))
            running -= 1
        return PodExit(0, worker_message(run))

    priorities = {f"r{i:02d}": i % 4 for i in range(20)}
    with JobRunner(cluster, run_pod=run_pod, max_parallel=50), operator():
        create(cluster, "blocker", "any.mp4", priority=100)
        deadline = time.monotonic() + 30
        while started.count("blocker") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, priority in priorities.items():
            create(cluster, name, "any.mp4", priority=priority, renditions=LADDER[:1])
        for name in priorities:
            wait_phase(cluster, name, "Queued")
        cluster.loop.call_soon_threadsafe(release.set)
        for name in [*priorities, "blocker"]:
            assert phase_of(wait_phase(cluster, name, "Succeeded", "Failed")) == "Succeeded"
    assert peak == 2
    expected = sorted(priorities, key=lambda name: (-priorities[name], name))
    assert started == ["blocker", "blocker", *expected]


def test_the_retry_annotation_reruns_what_failed(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, clip: ClipFactory, tmp_path: Path
) -> None:
    """A source that was broken, then fixed: bumping hlsforge.dev/retry finishes the job."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"")
    upload(s3, broken, "u1/fox.mp4")
    with operator():
        create(cluster, "fox", "u1/fox.mp4")
        assert "empty" in wait_phase(cluster, "fox", "Failed")["status"]["message"]
        upload(s3, clip(size="640x360", seconds=2), "u1/fox.mp4")
        retry = {"metadata": {"annotations": {"hlsforge.dev/retry": "1"}}}
        cluster.patch(VIDEOTRANSCODES, NAMESPACE, "fox", retry)
        status = wait_phase(cluster, "fox", "Succeeded")["status"]
    assert status["renditionsSummary"] == "3/3"
    assert "message" not in status
    probes = cluster.list(
        JOBS, NAMESPACE, labels="hlsforge.dev/role=probe,hlsforge.dev/transcode=fox"
    )
    assert sorted(job["status"].get("succeeded", 0) for job in probes) == [0, 1]  # one new Job


def test_a_spec_edited_after_the_probe_fails_the_resource_readably(
    cluster: EmulatedCluster, s3: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A cluster without CEL lets the edit through: the operator neither crash-loops nor mixes
    two specs. It fails the resource with what to do; no rung of the edited ladder starts."""
    monkeypatch.setenv("HLSFORGE_MAX_RUNNING_JOBS", "1")  # the rest wait while 144p runs
    release = asyncio.Event()

    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("rendition", "audio"):
            await release.wait()
        return PodExit(0, worker_message(run))

    with JobRunner(cluster, run_pod=run_pod), operator() as kopf:
        create(cluster, "elk", "any.mp4")
        wait_phase(cluster, "elk", "Transcoding")
        edited = [LADDER[0], {"name": "480p", "height": 480, "videoBitrate": "900k"}]
        cluster.patch(VIDEOTRANSCODES, NAMESPACE, "elk", {"spec": {"renditions": edited}})
        cluster.loop.call_soon_threadsafe(release.set)
        failed = wait_phase(cluster, "elk", "Failed", "Succeeded", timeout=30)
        cluster.wait_for(  # the running rung is still rolled up
            VIDEOTRANSCODES, NAMESPACE, "elk",
            lambda body: (body or {})["status"]["renditions"][1]["phase"] == "Succeeded",
        )  # fmt: skip
        jobs = sorted(j["metadata"]["name"] for j in cluster.list(JOBS, NAMESPACE))
    status = failed["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == (
        "the spec changed after the transcode started (only priority, sliceParallelism and "
        "output.cleanupOnDelete may change): delete and create a new VideoTranscode"
    )
    assert [r["name"] for r in status["renditions"]] == ["audio-0", "144p", "240p"]  # as started
    assert jobs == ["elk-144p", "elk-probe"]
    assert "Traceback" not in kopf.output + caplog.text
    assert errors(caplog) == []


def test_a_rung_whose_pod_cannot_be_scheduled_shows_pending_with_the_reason(
    cluster: EmulatedCluster, s3: Any
) -> None:
    """The emulated node runs one pod at a time: the second rung's pod stays Pending with
    PodScheduled=False (Unschedulable), and its rung says so instead of Running."""
    release = asyncio.Event()

    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] == "rendition":
            await release.wait()
        return PodExit(0, worker_message(run))

    def rung(body: dict[str, Any] | None, name: str) -> dict[str, Any]:
        rungs = (body or {}).get("status", {}).get("renditions", [])
        return next((r for r in rungs if r["name"] == name), {})

    with JobRunner(cluster, run_pod=run_pod, max_parallel=1), operator():
        create(cluster, "yak", "any.mp4")
        body = cluster.wait_for(
            VIDEOTRANSCODES, NAMESPACE, "yak",
            lambda b: rung(b, "144p").get("phase") == "Running" and "message" in rung(b, "240p"),
        )  # fmt: skip
        waiting = rung(body, "240p")
        (pod,) = cluster.list(PODS, NAMESPACE, labels="job-name=yak-240p")
        cluster.loop.call_soon_threadsafe(release.set)
        assert phase_of(wait_phase(cluster, "yak", "Succeeded", "Failed")) == "Succeeded"
    (scheduled,) = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert waiting["phase"] == "Pending"
    assert waiting["message"] == scheduled["message"]
    assert waiting["message"].startswith("0/1 nodes are available")
