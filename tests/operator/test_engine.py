"""The engine's own I/O paths against the emulated API server."""

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import pytest
from hlsforge_dev import PODS, VIDEOTRANSCODES, EmulatedCluster

from transcode_operator.engine import Engine
from transcode_operator.kube import Kube, api_client
from transcode_operator.publish import Publisher
from transcode_operator.settings import OperatorSettings
from transcode_operator.slices import slice_plans
from videotranscode import VideoTranscodeSpec, VideoTranscodeStatus

NAMESPACE = "default"


@pytest.mark.usefixtures("operator_env")
async def test_a_failed_log_follow_is_one_readable_line(
    cluster: EmulatedCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A pod that has not started has no log yet (400 from the API): the warning gives the
    status and the API's message on one line, not the client's headers and body dump."""
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "v1-720p-abcde"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "x"}]},
    }  # fmt: skip
    cluster.create(PODS, pod, namespace=NAMESPACE)
    engine = Engine(settings=OperatorSettings(), kube=Kube(api_client()), s3=None)
    caplog.set_level(logging.INFO, logger="transcode_operator")
    try:
        engine.follow(NAMESPACE, "v1-720p-abcde", (NAMESPACE, "v1"), {}, {})
        task = engine.background.tasks[("pod", NAMESPACE, "v1-720p-abcde")]
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback runs next
    finally:
        engine.stop()
    (record,) = [r for r in caplog.records if r.name.startswith("transcode_operator")]
    assert record.getMessage() == (
        'pod/default/v1-720p-abcde failed: 400 Bad Request: container "worker" in pod '
        '"v1-720p-abcde" is waiting to start: ContainerCreating'
    )


@pytest.mark.usefixtures("operator_env", "cluster")
async def test_following_a_pod_that_is_gone_is_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pods are deleted under their followers (the resource was deleted): nothing to report."""
    engine = Engine(settings=OperatorSettings(), kube=Kube(api_client()), s3=None)
    caplog.set_level(logging.INFO, logger="transcode_operator")
    try:
        engine.follow(NAMESPACE, "v1-720p-gone1", (NAMESPACE, "v1"), {}, {})
        await asyncio.wait([engine.background.tasks[("pod", NAMESPACE, "v1-720p-gone1")]])
        await asyncio.sleep(0)
    finally:
        engine.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


class UnwritableS3:
    def put_object(self, **_: Any) -> None:
        raise RuntimeError("the bucket is gone")


@pytest.mark.usefixtures("operator_env")
async def test_a_master_playlist_that_cannot_be_written_leaves_it_packaging_and_retries(
    cluster: EmulatedCluster,
) -> None:
    """Every rung is done, so the pass would write Succeeded; the master playlist cannot be
    written: the status written is Packaging saying why, and another pass is scheduled."""
    cluster.create(VIDEOTRANSCODES, {
        "apiVersion": "hlsforge.dev/v1alpha1", "kind": "VideoTranscode", "metadata": {"name": "v1"},
        "spec": {"source": {"bucket": "uploads", "key": "a.mp4"},
                 "output": {"bucket": "media", "prefix": "videos/v1"},
                 "renditions": [{"name": "144p", "height": 144, "videoBitrate": "150k"}]},
    }, namespace=NAMESPACE)  # fmt: skip
    cluster.patch_status(VIDEOTRANSCODES, NAMESPACE, "v1", {
        "phase": "Packaging", "progress": 100,
        "source": {"durationSeconds": 4.0, "container": "mov,mp4", "sizeBytes": 1000,
                   "video": {"codec": "h264", "width": 320, "height": 180, "fps": 30.0,
                             "frameRate": "30/1", "pixelFormat": "yuv420p", "rotation": 0}},
        "renditions": [{"name": "144p", "phase": "Succeeded", "progress": 100, "jobName": "v1-144p",
                        "bandwidth": 200000, "averageBandwidth": 180000, "resolution": "256x144",
                        "codecs": "avc1.64000c", "playlist": "videos/v1/144p/index.m3u8"}],
    })  # fmt: skip
    engine = Engine(settings=OperatorSettings(), kube=Kube(api_client()), s3=UnwritableS3())
    try:
        await engine.reconcile((NAMESPACE, "v1"), {}, {})
        assert ("retry", NAMESPACE, "v1") in engine.background.tasks
    finally:
        engine.stop()
    status = cluster.get(VIDEOTRANSCODES, NAMESPACE, "v1")["status"]
    assert (status["phase"], status["message"]) == (
        "Packaging", "writing the playlists failed, retrying: the bucket is gone"
    )  # fmt: skip
    assert "playback" not in status


class RelayRecorder(Publisher):
    def __init__(self) -> None:
        self.relayed: list[tuple[str, float]] = []

    async def progress(
        self, owner: Mapping[str, str], rendition: str, percent: float, line: Mapping[str, Any]
    ) -> None:
        self.relayed.append((rendition, percent))


@pytest.mark.usefixtures("operator_env", "cluster")
async def test_a_slices_progress_is_relayed_as_the_status_weighs_it() -> None:
    """Slices of 6, 30, 30 and 9 s, the first two stored: slice 2 at half way is the
    rendition at 68 % (51 of 75 s), as the status will say, not the mean of the slices heard
    from."""
    recorder = RelayRecorder()
    engine = Engine(settings=OperatorSettings(), kube=Kube(api_client()), s3=None,
                    publisher=recorder)  # fmt: skip
    source = {
        "durationSeconds": 75.0, "container": "mov,mp4", "sizeBytes": 1000,
        "video": {"codec": "h264", "width": 1280, "height": 720, "fps": 30.0,
                  "frameRate": "30/1", "pixelFormat": "yuv420p", "rotation": 0},
    }  # fmt: skip
    status = VideoTranscodeStatus.model_validate({
        "source": source, "sliceSeconds": 30,
        "renditions": [{"name": "720p", "slices": 4, "slicesDone": 2, "completedSlices": "0,1"}],
    })  # fmt: skip
    key = (NAMESPACE, "v1")
    spec = VideoTranscodeSpec.model_validate(
        {
            "source": {"bucket": "uploads", "key": "a.mp4"},
            "output": {"bucket": "media", "prefix": "v"},
        }
    )
    engine.sliced[key] = slice_plans(status, spec)
    engine.last_written[key] = time.monotonic()  # no status pass: only the relay
    try:
        line = {"event": "progress", "rendition": "720p", "percent": 50.0}
        await engine._progress(key, line, {}, {}, slice_index=2)
    finally:
        engine.stop()
    assert recorder.relayed == [("720p", 68.0)]
