"""Sliced renditions end to end (issue 12): Kopf against the emulated API server, Indexed
Jobs run by the JobRunner (real `hlsforge-worker` processes, or a hook storing what a worker
would), outputs in moto S3."""

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import m3u8
import pytest
from conftest import ClipFactory
from helpers import ffmpeg
from hlsforge_dev import JOBS, PODS, VIDEOTRANSCODES, EmulatedCluster, JobRunner, PodExit, PodRun
from hlsforge_dev.indexed import COMPLETION_INDEX, INDEX_ENV
from hlsforge_dev.simulated import stored_slice, worker_message
from kopf_cluster import create, operator, upload, wait_phase

from transcode_worker.cli import read_request
from videotranscode import RenditionArgs, target_duration_errors

pytestmark = pytest.mark.usefixtures("operator_env")
NAMESPACE = "default"


def pods_by_index(cluster: EmulatedCluster, job: str) -> Counter[str]:
    pods = cluster.list(PODS, NAMESPACE, labels=f"job-name={job}")
    return Counter(pod["metadata"]["labels"][COMPLETION_INDEX] for pod in pods)


def text(s3: Any, key: str) -> str:
    return str(s3.get_object(Bucket="media", Key=key)["Body"].read().decode())


def test_a_sliced_resource_plays_before_it_is_done_and_ends_as_one_vod_ladder(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, clip: ClipFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Real workers, three 6 s slices per rung, two pods at a time: the first slices of both
    rungs go first, the master and EVENT playlists are published while the rest encodes."""
    monkeypatch.setenv("HLSFORGE_MAX_RUNNING_JOBS", "2")
    upload(s3, clip(size="640x360", seconds=18), "u1/fox.mp4")
    early: dict[str, Any] = {}
    with operator():
        create(cluster, "fox", "u1/fox.mp4", slicing=6)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = (cluster.find(VIDEOTRANSCODES, NAMESPACE, "fox") or {}).get("status", {})
            if status.get("playableAt") and not early:
                early = {"phase": status["phase"], "media": text(s3, "videos/fox/240p/index.m3u8"),
                         "done": [r["slicesDone"] for r in status["renditions"]
                                  if r["name"] != "audio-0"]}  # fmt: skip
            if status.get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(0.05)
    assert status["phase"] == "Succeeded", status
    assert early["phase"] == "Transcoding"
    assert min(early["done"]) >= 1, early
    assert max(early["done"]) < 3, early  # before the end
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in early["media"]
    assert "#EXT-X-ENDLIST" not in early["media"]
    assert status["playableAt"] <= status["completedAt"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True", "Playable": "True",
    }  # fmt: skip
    assert status["sliceSeconds"] == 6

    jobs = {j["metadata"]["name"]: j for j in
            cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=fox")}  # fmt: skip
    assert sorted(jobs) == ["fox-144p", "fox-240p", "fox-audio-0", "fox-probe"]  # one per rendition
    for name in ("fox-144p", "fox-240p"):
        assert jobs[name]["spec"]["completionMode"] == "Indexed"
        assert jobs[name]["spec"]["completions"] == 3
        assert pods_by_index(cluster, name) == {"0": 1, "1": 1, "2": 1}  # each slice once

    audio, *videos = status["renditions"]
    assert (audio["name"], audio["phase"], audio.get("slices")) == ("audio-0", "Succeeded", None)
    for rung in videos:
        assert (rung["phase"], rung["slices"], rung["slicesDone"]) == ("Succeeded", 3, 3)
        media = text(s3, rung["playlist"])
        assert target_duration_errors(media) == []
        playlist = m3u8.loads(media)
        assert (playlist.playlist_type, playlist.is_endlist) == ("vod", True)
        assert len(playlist.segments) == 3
        assert sum(segment.duration for segment in playlist.segments) == pytest.approx(18, abs=0.1)
        folder = rung["playlist"].rsplit("/", 1)[0]
        for segment in playlist.segments:
            s3.head_object(Bucket="media", Key=f"{folder}/{segment.uri}")
            s3.head_object(Bucket="media", Key=f"{folder}/{segment.init_section.uri}")
    master = m3u8.loads(text(s3, "videos/fox/master.m3u8"))
    bandwidths = {p.uri: p.stream_info.bandwidth for p in master.playlists}
    assert bandwidths == {
        f"{r['name']}/index.m3u8": r["bandwidth"] + audio["bandwidth"] for r in videos
    }
    assert [m.uri for m in master.media] == ["audio-0/index.m3u8"]
    assert "#EXT-X-ENDLIST" in text(s3, "videos/fox/audio-0/index.m3u8")


def test_a_phone_clip_whose_sound_outlasts_its_pictures_into_a_last_slice_succeeds(
    cluster: EmulatedCluster, runner: JobRunner, s3: Any, tmp_path: Path
) -> None:  # fmt: skip
    """Real workers: 12 s of pictures and 12.3 s of sound, in 6 s slices. Slices are counted on
    the container's duration (the sound's), so the 3rd has no picture: it stores an empty
    result and succeeds at once (it used to fail with exit 1, retried until its backoff)."""
    source = tmp_path / "phone.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=12",
           "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=12.3",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(source))  # fmt: skip
    upload(s3, source, "u1/phone.mp4")
    rung = {"name": "144p", "height": 144, "videoBitrate": "200k"}
    with operator():
        create(cluster, "emu", "u1/phone.mp4", slicing=6, renditions=[rung])
        status = wait_phase(cluster, "emu", "Succeeded", "Failed", timeout=180)["status"]
    assert status["phase"] == "Succeeded", status
    audio, video = status["renditions"]
    assert (video["name"], video["slices"], video["slicesDone"]) == ("144p", 3, 3)
    assert pods_by_index(cluster, "emu-144p") == {"0": 1, "1": 1, "2": 1}  # none retried
    empty = json.loads(text(s3, "videos/emu/144p/slice_2.json"))
    assert (empty["rendition"], empty["segments"]) == (None, [])
    media = m3u8.loads(text(s3, video["playlist"]))
    assert (media.playlist_type, media.is_endlist) == ("vod", True)
    assert [s.uri for s in media.segments] == ["seg_00000.m4s", "seg_00001.m4s"]
    assert sum(s.duration for s in media.segments) == pytest.approx(12, abs=0.01)
    # Measured by the slices with pictures (the empty one measured nothing).
    assert (video["resolution"], video["codecs"]) == ("256x144", "avc1.64000c")
    assert video["bandwidth"] > 0
    sound = m3u8.loads(text(s3, audio["playlist"]))
    assert sum(s.duration for s in sound.segments) == pytest.approx(12.3, abs=0.05)  # whole


def test_a_failing_slice_is_retried_alone(cluster: EmulatedCluster, s3: Any) -> None:
    """Slice 2 of 240p fails once (exit 1): its index runs again; no other slice does."""
    failed: list[str] = []

    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("probe", "audio"):
            return PodExit(0, worker_message(run))
        if run.job_name == "gnu-240p" and run.env[INDEX_ENV] == "2" and not failed:
            failed.append(run.name)
            return PodExit(1, '{"event": "error", "message": "the node ran out of memory"}')
        return PodExit(0, await asyncio.to_thread(stored_slice, run, s3))

    with JobRunner(cluster, run_pod=run_pod), operator():
        create(cluster, "gnu", "any.mp4", slicing=12)  # the simulated source is 60 s: 6 slices
        status = wait_phase(cluster, "gnu", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status
    assert failed
    assert pods_by_index(cluster, "gnu-240p") == {"0": 1, "1": 1, "2": 2, "3": 1, "4": 1, "5": 1}
    assert pods_by_index(cluster, "gnu-144p") == {str(i): 1 for i in range(6)}
    media = m3u8.loads(text(s3, "videos/gnu/240p/index.m3u8"))
    assert [s.uri for s in media.segments] == [f"seg_{n:05d}.m4s" for n in range(10)]


def test_a_retry_encodes_only_the_slices_not_stored(cluster: EmulatedCluster, s3: Any) -> None:
    """Slice 3 of 240p fails for good (exit 2) after the others are stored, failing the
    resource; the retry annotation starts a new Job that keeps slices 0-2, 4 and 5 and encodes
    only slice 3 (its pods are given the stored slices; the simulated worker keeps them
    as the real one does, tests/worker/test_slice_reuse.py)."""
    fail = asyncio.Event()
    fail.set()
    encoded: list[tuple[str | None, str]] = []

    async def stored_others(job: str) -> None:
        while True:
            body = await asyncio.to_thread(cluster.find, JOBS, NAMESPACE, job)
            if (body or {}).get("status", {}).get("completedIndexes") == "0-2,4,5":
                return
            await asyncio.sleep(0.05)

    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("probe", "audio"):
            return PodExit(0, worker_message(run))
        index = run.env[INDEX_ENV]
        if run.job_name == "gnu-240p" and index == "3" and fail.is_set():
            await stored_others("gnu-240p")
            fail.clear()
            return PodExit(2, '{"event": "error", "message": "the disk was unreadable"}')
        request = read_request([*run.args, "--slice-index", index])
        assert isinstance(request, RenditionArgs)
        if int(index) not in request.done_slices:
            encoded.append((run.job_name, index))
        return PodExit(0, await asyncio.to_thread(stored_slice, run, s3))

    with JobRunner(cluster, run_pod=run_pod, max_parallel=8), operator():
        create(cluster, "gnu", "any.mp4", slicing=12)  # the simulated source is 60 s: 6 slices
        failed = wait_phase(cluster, "gnu", "Failed", "Succeeded")["status"]
        assert "the disk was unreadable" in failed["message"]
        rung = next(r for r in failed["renditions"] if r["name"] == "240p")
        assert (rung["slicesDone"], rung["completedSlices"]) == (5, "0-2,4,5")
        encoded.clear()
        cluster.patch(VIDEOTRANSCODES, NAMESPACE, "gnu",
                      {"metadata": {"annotations": {"hlsforge.dev/retry": "1"}}})  # fmt: skip

        def retried_and_ended(body: dict[str, Any] | None) -> bool:
            status = (body or {}).get("status", {})
            retried = status["renditions"][2]["jobName"] != "gnu-240p"
            return retried and status["phase"] in ("Succeeded", "Failed")

        body = cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, "gnu", retried_and_ended, timeout=60)
    assert body is not None
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    rung = status["renditions"][2]
    assert rung["name"] == "240p"
    retry_job = cluster.get(JOBS, NAMESPACE, rung["jobName"])
    assert rung["jobName"] != "gnu-240p"
    args = retry_job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--done-slices") + 1] == "0-2,4,5"
    assert [index for job, index in encoded if job == rung["jobName"]] == ["3"]
    assert (rung["slicesDone"], rung["completedSlices"]) == (6, "0-5")
    media = m3u8.loads(text(s3, "videos/gnu/240p/index.m3u8"))
    assert [s.uri for s in media.segments] == [f"seg_{n:05d}.m4s" for n in range(10)]
    assert media.is_endlist


def test_a_bad_source_in_one_slice_fails_the_resource_at_once(
    cluster: EmulatedCluster, s3: Any
) -> None:
    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("probe", "audio"):
            return PodExit(0, worker_message(run))
        if run.env[INDEX_ENV] == "1":
            return PodExit(2, '{"event": "error", "message": "the source is truncated at 14 s"}')
        await asyncio.sleep(0.2)
        return PodExit(0, await asyncio.to_thread(stored_slice, run, s3))

    with JobRunner(cluster, run_pod=run_pod), operator():
        create(cluster, "yak", "any.mp4", slicing=12)
        status = wait_phase(cluster, "yak", "Failed", "Succeeded")["status"]
    assert status["phase"] == "Failed"
    assert "the source is truncated at 14 s" in status["message"]
    for job in ("yak-144p", "yak-240p"):
        assert pods_by_index(cluster, job)["1"] == 1  # exit code 2: no retry


def test_deleting_mid_way_stops_every_slice(cluster: EmulatedCluster, s3: Any) -> None:
    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("probe", "audio"):
            return PodExit(0, worker_message(run))
        await asyncio.sleep(3600)
        return PodExit(0)

    with JobRunner(cluster, run_pod=run_pod, max_parallel=50), operator():
        create(cluster, "elk", "any.mp4", slicing=12)
        deadline = time.monotonic() + 30
        while len(cluster.list(PODS, NAMESPACE, labels="hlsforge.dev/role=rendition")) < 4:
            assert time.monotonic() < deadline, "the slices did not start"
            time.sleep(0.05)
        cluster.delete(VIDEOTRANSCODES, NAMESPACE, "elk")
        deadline = time.monotonic() + 15
        while cluster.list(PODS, NAMESPACE, labels="hlsforge.dev/transcode=elk"):
            assert time.monotonic() < deadline, "slice pods were left running"
            time.sleep(0.05)
    assert cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=elk") == []


def test_a_restarted_operator_finishes_a_sliced_resource_without_duplicates(
    cluster: EmulatedCluster, s3: Any
) -> None:
    async def run_pod(run: PodRun) -> PodExit:
        if run.args[0] in ("probe", "audio"):
            return PodExit(0, worker_message(run))
        await asyncio.sleep(0.3)
        return PodExit(0, await asyncio.to_thread(stored_slice, run, s3))

    with JobRunner(cluster, run_pod=run_pod):
        with operator():
            create(cluster, "owl", "any.mp4", slicing=12)
            wait_phase(cluster, "owl", "Transcoding")
        time.sleep(1)  # slices go on finishing while no operator runs
        with operator():
            status = wait_phase(cluster, "owl", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status
    jobs = sorted(j["metadata"]["name"] for j in
                  cluster.list(JOBS, NAMESPACE, labels="hlsforge.dev/transcode=owl"))  # fmt: skip
    assert jobs == ["owl-144p", "owl-240p", "owl-audio-0", "owl-probe"]
    for job in ("owl-144p", "owl-240p"):
        assert pods_by_index(cluster, job) == {str(i): 1 for i in range(6)}
    assert "#EXT-X-ENDLIST" in text(s3, "videos/owl/240p/index.m3u8")
