"""Cancel, retry and deletion with the real operator: Kopf against the emulated API server,
kubectl as a user would type it, the `videos` read model in SecantusDB. Rendition "workers"
are JobRunner hooks: the 240p one holds its slot until it is stopped, so every step happens
while a rung is really running."""

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hlsforge_dev import JOBS, PODS, VIDEOTRANSCODES, EmulatedCluster, JobRunner, PodExit, PodRun
from hlsforge_dev.simulated import worker_message
from kopf.testing import KopfRunner
from pymongo import MongoClient
from pymongo.collection import Collection

pytestmark = pytest.mark.usefixtures("operator_env")
NAMESPACE = "default"
LADDER = [
    {"name": "144p", "height": 144, "videoBitrate": "150k"},
    {"name": "240p", "height": 240, "videoBitrate": "300k"},
]
Videos = Collection[dict[str, Any]]


@contextlib.contextmanager
def operator(*options: str) -> Iterator[None]:
    args = ["run", "--standalone", *(options or ["-A"]), "-m", "transcode_operator.handlers"]
    with KopfRunner(args, timeout=120) as runner:
        yield
    assert runner.exception is None, runner.output


@pytest.fixture
def videos(mongodb_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Videos]:
    """A fresh `videos` collection the operator writes to."""
    database = f"op_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("HLSFORGE_MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("HLSFORGE_MONGODB_DATABASE", database)
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    yield client[database]["videos"]
    client.close()


@pytest.fixture
def stopped(cluster: EmulatedCluster) -> Iterator[list[str]]:
    """Jobs run by hooks: the first 240p Job runs until stopped (its name is then recorded);
    every other Job succeeds at once."""
    names: list[str] = []

    async def run_pod(run: PodRun) -> PodExit:
        if run.job_name and run.job_name.endswith("-240p"):
            try:
                await asyncio.sleep(3600)
            finally:
                names.append(run.job_name)
        return PodExit(0, worker_message(run))

    with JobRunner(cluster, run_pod=run_pod):
        yield names


def create(cluster: EmulatedCluster, name: str, video_id: str, namespace: str = NAMESPACE) -> None:
    cluster.create(VIDEOTRANSCODES, {
        "apiVersion": "hlsforge.dev/v1alpha1", "kind": "VideoTranscode",
        "metadata": {"name": name},
        "spec": {"source": {"bucket": "uploads", "key": "a.mp4"},
                 "output": {"bucket": "media", "prefix": f"videos/{name}"},
                 "renditions": LADDER, "videoId": video_id, "owner": "u1"},
    }, namespace=namespace)  # fmt: skip


def kubectl(cluster: EmulatedCluster, *args: str) -> None:
    config = cluster.write_kubeconfig(f"/tmp/kubeconfig-{uuid.uuid4().hex}")
    try:
        done = subprocess.run(["kubectl", "--kubeconfig", str(config), *args],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    finally:
        config.unlink()
    assert done.returncode == 0, done.stderr


def status_of(cluster: EmulatedCluster, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return dict((cluster.find(VIDEOTRANSCODES, namespace, name) or {}).get("status") or {})


def rungs(status: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["phase"] for r in status.get("renditions", [])}


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def wait_transcoding(cluster: EmulatedCluster, name: str, namespace: str = NAMESPACE) -> None:
    """144p done, 240p running."""
    eventually(
        lambda: (
            rungs(status_of(cluster, name, namespace))
            == {"audio-0": "Succeeded", "144p": "Succeeded", "240p": "Running"}
        ),
        f"{name} never got to transcoding: {status_of(cluster, name, namespace)}",
    )


def phase_of(videos: Videos, video_id: str) -> str | None:
    video = videos.find_one({"_id": video_id})
    return None if video is None else str(video["phase"])


@pytest.mark.usefixtures("s3")  # the buckets, for the master playlist
def test_kubectl_cancel_stops_the_jobs_and_a_retry_runs_only_the_cancelled_rungs(
    cluster: EmulatedCluster, stopped: list[str], videos: Videos
) -> None:
    videos.insert_one({"_id": "vid-c", "phase": "queued"})
    with operator():
        create(cluster, "cat", "vid-c")
        wait_transcoding(cluster, "cat")
        kubectl(cluster, "annotate", "vt", "cat", "hlsforge.dev/cancel=true")
        eventually(lambda: status_of(cluster, "cat").get("phase") == "Cancelled", "no Cancelled")
        status = status_of(cluster, "cat")
        assert rungs(status) == {"audio-0": "Succeeded", "144p": "Succeeded", "240p": "Cancelled"}
        assert status["message"] == "cancelled on request"
        assert status["completedAt"]
        # The running Job is deleted and its worker stopped; the finished ones stay (TTL).
        eventually(lambda: stopped == ["cat-240p"], "the 240p worker was not stopped")
        eventually(lambda: not cluster.list(PODS, NAMESPACE, labels="job-name=cat-240p"),
                   "the 240p pod was not removed")  # fmt: skip
        jobs = cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=cat")
        assert sorted(j["metadata"]["name"] for j in jobs) == [
            "cat-144p",
            "cat-audio-0",
            "cat-probe",
        ]
        eventually(lambda: phase_of(videos, "vid-c") == "cancelled", "videos not cancelled")
        video = videos.find_one({"_id": "vid-c"})
        assert video is not None
        assert video["error"] == "cancelled on request"

        kubectl(cluster, "annotate", "vt", "cat", "hlsforge.dev/cancel-",
                "hlsforge.dev/retry=1", "--overwrite")  # fmt: skip
        eventually(lambda: status_of(cluster, "cat").get("phase") == "Succeeded", "no success")
        eventually(lambda: phase_of(videos, "vid-c") == "succeeded", "videos not succeeded")
    assert len(cluster.list(PODS, NAMESPACE, labels="job-name=cat-144p")) == 1  # kept, not rerun
    retried = [r for r in status_of(cluster, "cat")["renditions"] if r["name"] == "240p"]
    assert retried[0]["jobName"].startswith("cat-240p-")  # a new Job for the cancelled rung


def test_kubectl_delete_of_an_unfinished_resource_leaves_its_video_cancelled(
    cluster: EmulatedCluster, stopped: list[str], videos: Videos
) -> None:
    videos.insert_one({"_id": "vid-d", "phase": "queued"})
    with operator():
        create(cluster, "dog", "vid-d")
        wait_transcoding(cluster, "dog")
        eventually(lambda: phase_of(videos, "vid-d") == "transcoding", "videos not transcoding")
        kubectl(cluster, "delete", "vt", "dog")
        eventually(lambda: phase_of(videos, "vid-d") == "cancelled", "videos not cancelled")
    video = videos.find_one({"_id": "vid-d"})
    assert video is not None
    assert video["error"] == "the VideoTranscode was deleted before it finished"
    assert {r["name"]: r["phase"] for r in video["renditions"]} == {
        "audio-0": "Succeeded", "144p": "Succeeded", "240p": "Cancelled"
    }  # fmt: skip


def test_deleting_its_namespace_leaves_an_unfinished_video_cancelled(
    cluster: EmulatedCluster, stopped: list[str], videos: Videos
) -> None:
    cluster.create("v1/namespaces", {"metadata": {"name": "media"}})
    cluster.create("v1/secrets", {"metadata": {"name": "hlsforge-s3"}, "stringData": {
        "accessKeyId": "testing", "secretAccessKey": "testing"}}, namespace="media")  # fmt: skip
    videos.insert_one({"_id": "vid-n", "phase": "queued"})
    with operator():
        create(cluster, "eel", "vid-n", namespace="media")
        wait_transcoding(cluster, "eel", "media")
        kubectl(cluster, "delete", "namespace", "media")
        eventually(lambda: phase_of(videos, "vid-n") == "cancelled", "videos not cancelled")
    assert cluster.find("v1/namespaces", None, "media") is None
    assert stopped == ["eel-240p"]


def test_resources_deleted_while_the_operator_was_down_are_cancelled_at_startup(
    cluster: EmulatedCluster, videos: Videos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only videos the operator had written as under way, in the namespaces it watches, whose
    resource is gone. The sweep goes in id order, so `z-gone` is looked at last."""
    monkeypatch.setenv("HLSFORGE_NAMESPACES", '["default"]')
    cluster.create(VIDEOTRANSCODES, {
        "apiVersion": "hlsforge.dev/v1alpha1", "kind": "VideoTranscode",
        "metadata": {"name": "alive"},
        "spec": {"source": {"bucket": "uploads", "key": "a.mp4"},
                 "output": {"bucket": "media", "prefix": "videos/alive"}},
    }, namespace=NAMESPACE)  # fmt: skip
    running = [{"name": "144p", "phase": "Succeeded", "progress": 100},
               {"name": "240p", "phase": "Running", "progress": 40}]  # fmt: skip

    def video(video_id: str, phase: str, namespace: str, name: str, **more: Any) -> None:
        videos.insert_one({"_id": video_id, "owner": "u1", "phase": phase, "progress": 70,
                           "renditions": running, "transcode": {"namespace": namespace,
                                                                "name": name}, **more})  # fmt: skip

    video("a-elsewhere", "transcoding", "other", "gone-a", transcodeSeq=1)  # not watched
    video("b-api-queued", "queued", NAMESPACE, "gone-b")  # the API's: may not be created yet
    video("c-alive", "transcoding", NAMESPACE, "alive", transcodeSeq=1)
    video("d-finished", "succeeded", NAMESPACE, "gone-d", transcodeSeq=1)
    video("z-gone", "transcoding", NAMESPACE, "gone-z", transcodeSeq=1)
    with operator("--namespace", NAMESPACE):
        eventually(lambda: phase_of(videos, "z-gone") == "cancelled", "z-gone not cancelled")
    gone = videos.find_one({"_id": "z-gone"})
    assert gone is not None
    assert gone["error"] == "the VideoTranscode was deleted before it finished"
    assert [(r["name"], r["phase"]) for r in gone["renditions"]] == [
        ("144p", "Succeeded"), ("240p", "Cancelled")
    ]  # fmt: skip
    assert gone["progress"] == 70
    assert [phase_of(videos, v) for v in ("a-elsewhere", "b-api-queued", "c-alive",
                                          "d-finished")] == [
        "transcoding", "queued", "transcoding", "succeeded"
    ]  # fmt: skip
