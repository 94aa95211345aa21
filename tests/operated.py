"""The API with the real operator in Kopf's thread, and Jobs run by JobRunner hooks, for tests
that need a rendition to be encoding when they act: the first 1080p Job "encodes" until it is
stopped; every other Job succeeds at once (hlsforge_dev.simulated)."""

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Api
from hlsforge_dev import VIDEOTRANSCODES, EmulatedCluster, JobRunner, PodExit, PodRun, RunPod
from hlsforge_dev.simulated import worker_message
from kopf.testing import KopfRunner

NAMESPACE = "default"


def held_1080p(s3: Any, release: threading.Event, seen: dict[str, bool]) -> RunPod:
    """The probe leaves a poster in the outputs. The first 1080p Job encodes until stopped;
    once `release` is set it notes whether the poster was still there, and uploads one more
    segment (a worker finishing just then)."""

    async def run_pod(run: PodRun) -> PodExit:
        prefix = run.args[2].removeprefix("s3://media/")
        if run.args[0] == "probe":
            s3.put_object(Bucket="media", Key=f"{prefix}/poster.jpg", Body=b"\xff\xd8")
        elif run.job_name and run.job_name.endswith("-1080p"):
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.to_thread(release.wait, 60)
                seen["poster"] = "Contents" in s3.list_objects_v2(
                    Bucket="media", Prefix=f"{prefix}/poster.jpg"
                )
                s3.put_object(Bucket="media", Key=f"{prefix}/1080p/seg_00009.m4s", Body=b"late")
        return PodExit(0, worker_message(run))

    return run_pod


@contextlib.contextmanager
def operator_of(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The operator in Kopf's thread, wired to the API's MongoDB and Socket.IO."""
    settings = api.settings
    assert settings.service_token is not None
    for key, value in {
        "HLSFORGE_MONGODB_URI": settings.mongodb_uri.get_secret_value(),
        "HLSFORGE_MONGODB_DATABASE": settings.mongodb_database,
        "HLSFORGE_API_URL": api.url,
        "HLSFORGE_SERVICE_TOKEN": settings.service_token.get_secret_value(),
    }.items():
        monkeypatch.setenv(key, value)
    args = ["run", "--standalone", "-A", "-m", "transcode_operator.handlers"]
    with KopfRunner(args, timeout=120) as kopf_runner:
        yield
    assert kopf_runner.exception is None, kopf_runner.output


@contextlib.contextmanager
def operated(
    api: Api, cluster: EmulatedCluster, run_pod: RunPod, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """`operator_of` the API, Jobs run by `run_pod`."""
    with JobRunner(cluster, run_pod=run_pod), operator_of(api, monkeypatch):
        yield


def wait_encoding(cluster: EmulatedCluster, video_id: str) -> None:
    """Until the 1080p rung runs."""

    def running(body: dict[str, Any] | None) -> bool:
        rungs = ((body or {}).get("status") or {}).get("renditions") or []
        return any(r["name"] == "1080p" and r["phase"] == "Running" for r in rungs)

    cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, f"video-{video_id}", running, timeout=60)
