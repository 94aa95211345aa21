"""Sliced renditions in the operator's pure pass (issue 12): Indexed Jobs, playable early,
growing EVENT playlists, VOD at the end; and the queue widening sliced Jobs."""

from typing import Any, cast

import m3u8
import pytest

from transcode_operator.jobs import Slicing, build_rendition_job
from transcode_operator.kube import Kube
from transcode_operator.observe import JobState
from transcode_operator.outcomes import Outcome
from transcode_operator.reconcile import Observed, Resource, next_status, parse_spec
from transcode_operator.scheduling import Queue, WaitingRung, Widening, rungs_to_start, widths
from transcode_operator.settings import JobSettings, SlicingSettings
from transcode_operator.slices import measured_together, rendition_progress, slice_durations
from videotranscode import (
    RETRY_ANNOTATION,
    Phase,
    RenditionPhase,
    RenditionResult,
    SliceResult,
    SliceSegment,
    SourceInfo,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
    target_duration_errors,
)
from videotranscode.slicing import format_indexes, parse_indexes

NOW = "2026-12-02T10:00:00Z"
LADDER = [
    {"name": "360p", "height": 360, "videoBitrate": "800k"},
    {"name": "720p", "height": 720, "videoBitrate": "3000k"},
]
SOURCE: dict[str, Any] = {
    "durationSeconds": 75.0, "container": "mov,mp4", "sizeBytes": 1000,
    "video": {"codec": "h264", "width": 1280, "height": 720, "fps": 30.0, "frameRate": "30/1",
              "pixelFormat": "yuv420p", "rotation": 0},
}  # fmt: skip
SETTINGS = SlicingSettings(auto_threshold_seconds=60, auto_seconds=30, parallelism=4)


def spec(**fields: Any) -> VideoTranscodeSpec:
    return parse_spec({
        "source": {"bucket": "uploads", "key": "a.mp4"},
        "output": {"bucket": "media", "prefix": "v/1"},
        "renditions": LADDER,
        **fields,
    })  # fmt: skip


def step(
    status: VideoTranscodeStatus, jobs: dict[str, JobState] | None = None, *,
    slices: dict[str, dict[int, SliceResult]] | None = None,
    live: dict[str, dict[int, float]] | None = None, spec_: VideoTranscodeSpec | None = None,
) -> Outcome:  # fmt: skip
    return next_status(
        Resource("v1", spec_ or spec(), status, {}, generation=1),
        Observed(jobs or {}, {}, NOW, slices=slices or {}, slice_progress=live or {}),
        public_base_url=None,
        slicing=SETTINGS,
    )


def probed(source: dict[str, Any] = SOURCE, **fields: Any) -> VideoTranscodeStatus:
    probe = JobState("v1-probe", succeeded=1, complete=True, result={"source": source})
    return step(VideoTranscodeStatus(), {"v1-probe": probe}, spec_=spec(**fields)).status


# The 75 s source's slices, (start, seconds): the 6 s lead-in, two of 30 s, and the rest.
SLICES = [(0, 6.0), (6, 30.0), (36, 30.0), (66, 9.0)]


def piece(rung: str, index: int, bandwidth: int = 1_000_000) -> SliceResult:
    """Slice `index` of the 75 s source (SLICES), in 6 s segments."""
    start, seconds = SLICES[index]
    durations = [6.0] * int(seconds // 6) + ([seconds % 6] if seconds % 6 else [])
    measured = RenditionResult(
        name=rung, width=640, height=360, frame_rate=30, bandwidth=bandwidth,
        average_bandwidth=bandwidth // 2, codecs="avc1.64001e", segment_count=len(durations),
        duration_seconds=seconds, playlist_key=f"v/1/{rung}/slice_{index}.json",
    )  # fmt: skip
    return SliceResult(
        rendition=measured, index=index, first_pts_seconds=1 + start,
        segments=[SliceSegment(uri=f"seg_{start // 6 + n:05d}.m4s", duration=d)
                  for n, d in enumerate(durations)],
        init_uri=f"init_{index}.mp4", init_sha256="same",
        result_key=f"v/1/{rung}/slice_{index}.json",
    )  # fmt: skip


def all_done(slices: int) -> dict[str, JobState]:
    return {name: JobState(name, succeeded=slices, complete=True, completions=slices,
                           completed_indexes=frozenset(range(slices)))
            for name in ("v1-360p", "v1-720p")}  # fmt: skip


def running(name: str, done: set[int] = frozenset(), **fields: Any) -> JobState:  # type: ignore[assignment]
    return JobState(name, active=1, completions=4, completed_indexes=frozenset(done), **fields)


def test_a_long_source_is_sliced_and_a_short_one_is_not() -> None:
    status = probed()
    assert status.slice_seconds == 30
    assert [(r.name, r.slices, r.slices_done) for r in status.renditions] == [
        ("360p", 4, 0), ("720p", 4, 0),
    ]  # fmt: skip
    assert probed({**SOURCE, "durationSeconds": 60.0}).slice_seconds is None  # the threshold
    assert probed(slicing="off").slice_seconds is None
    assert probed(slicing=12).slice_seconds == 12
    assert probed(slicing=12).renditions[0].slices == 7  # 75 s in 12 s slices
    short = probed({**SOURCE, "durationSeconds": 20.0}, slicing=24)
    assert short.slice_seconds is None  # shorter than one slice
    # MPEG-TS too: a slice decodes from the keyframe before it, found by reading packets.
    assert probed({**SOURCE, "container": "mpegts"}).slice_seconds == 30


def test_slice_lengths_follow_the_frame_grid_and_end_with_the_source() -> None:
    source = SourceInfo.model_validate(
        {**SOURCE, "durationSeconds": 61.0,
         "video": {**SOURCE["video"], "frameRate": "30000/1001", "fps": 29.97}}
    )  # fmt: skip
    durations = slice_durations(source, 30, spec())
    assert durations[:2] == [pytest.approx(6.006), pytest.approx(30.03)]  # a lead-in first
    assert len(durations) == 3
    assert sum(durations) == pytest.approx(61.0)


def test_the_rendition_job_of_a_sliced_rung_is_indexed_one_pod_per_slice() -> None:
    source = SourceInfo.model_validate(SOURCE)
    rung = spec().renditions[1]  # type: ignore[index]
    job = build_rendition_job("v1", spec(), rung, JobSettings(backoff_limit=3), name="v1-720p",
                              source=source, slicing=Slicing(30, 3, parallelism=1))  # fmt: skip
    job_spec = job["spec"]
    assert (job_spec["completionMode"], job_spec["completions"], job_spec["parallelism"]) == (
        "Indexed", 3, 1,
    )  # fmt: skip
    assert (job_spec["backoffLimitPerIndex"], job_spec["maxFailedIndexes"]) == (3, 0)
    assert "backoffLimit" not in job_spec  # counted per slice
    args = job_spec["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--slice-seconds") + 1] == "30"
    assert "--slice-index" not in args  # each pod reads JOB_COMPLETION_INDEX
    assert job_spec["podFailurePolicy"]["rules"][0]["action"] == "FailJob"  # bad input: at once
    whole = build_rendition_job("v1", spec(), rung, JobSettings(), name="v1-720p",
                                source=source)  # fmt: skip
    assert "completionMode" not in whole["spec"]
    assert "--slice-seconds" not in whole["spec"]["template"]["spec"]["containers"][0]["args"]
    storage = "ephemeral-storage"
    limits = [j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][storage]
              for j in (job, whole)]  # fmt: skip
    assert limits[0] != limits[1]  # a slice reserves room for its share of the output


def test_nothing_plays_until_the_first_slice_of_every_rung_is_stored() -> None:
    status = probed()
    jobs = {"v1-360p": running("v1-360p", {0}), "v1-720p": running("v1-720p")}
    half = step(status, jobs, slices={"360p": {0: piece("360p", 0)}})
    assert half.status.phase == Phase.TRANSCODING
    assert half.status.playable_at is None
    assert half.write_playlists is None
    assert [c.status for c in half.status.conditions if c.type == "Playable"] == ["False"]
    assert half.status.renditions[0].slices_done == 1


def test_the_first_slices_publish_event_playlists_and_the_master() -> None:
    status = probed()
    jobs = {"v1-360p": running("v1-360p", {0}), "v1-720p": running("v1-720p", {0, 2})}
    slices = {
        "360p": {0: piece("360p", 0)},
        "720p": {0: piece("720p", 0, 3_000_000), 2: piece("720p", 2, 9_000_000)},
    }
    outcome = step(status, jobs, slices=slices)  # fmt: skip
    new = outcome.status
    assert new.phase == Phase.TRANSCODING
    assert new.playable_at == NOW
    assert new.playback is not None
    assert new.playback.master_playlist == "v/1/master.m3u8"
    playable = next(c for c in new.conditions if c.type == "Playable")
    assert (playable.status, playable.last_transition_time) == ("True", NOW)
    write = outcome.write_playlists
    assert write is not None
    assert write.keys == ["v/1/360p/index.m3u8", "v/1/720p/index.m3u8", "v/1/master.m3u8"]
    assert write.fallback == status  # not written: nothing is said to be playable
    media = m3u8.loads(write.text("v/1/720p/index.m3u8"))
    assert media.playlist_type == "event"
    assert not media.is_endlist
    assert [s.uri for s in media.segments] == ["seg_00000.m4s"]  # the prefix: the lead-in
    assert target_duration_errors(write.text("v/1/720p/index.m3u8")) == []
    master = m3u8.loads(write.text("v/1/master.m3u8"))
    bandwidths = {p.uri: p.stream_info.bandwidth for p in master.playlists}
    assert bandwidths == {"360p/index.m3u8": 1_000_000, "720p/index.m3u8": 3_000_000}
    # Written: the next pass with nothing new writes nothing.
    again = step(new, jobs, slices=slices)
    assert again.write_playlists is None
    assert again.status.playable_at == NOW


def test_a_new_slice_extends_only_its_rungs_playlist() -> None:
    status = probed()
    jobs = {"v1-360p": running("v1-360p", {0}), "v1-720p": running("v1-720p", {0})}
    slices = {"360p": {0: piece("360p", 0)}, "720p": {0: piece("720p", 0)}}
    playable = step(status, jobs, slices=slices).status
    jobs["v1-720p"] = running("v1-720p", {0, 1})
    slices["720p"][1] = piece("720p", 1)
    grown = step(playable, jobs, slices=slices)
    write = grown.write_playlists
    assert write is not None
    assert write.keys == ["v/1/720p/index.m3u8"]
    media = m3u8.loads(write.text("v/1/720p/index.m3u8"))
    assert (media.playlist_type, len(media.segments)) == ("event", 6)
    assert write.fallback == playable


def test_progress_weighs_slices_by_duration() -> None:
    assert rendition_progress([30.0, 30.0, 15.0], {0}, {1: 50.0, 2: 100.0}) == 80.0
    assert rendition_progress([30.0, 30.0, 15.0], set(), {}) == 0.0
    status = probed()
    jobs = {"v1-360p": running("v1-360p", {0}), "v1-720p": running("v1-720p")}
    outcome = step(status, jobs, slices={"360p": {0: piece("360p", 0)}},
                   live={"360p": {1: 50.0}, "720p": {0: 30.0}})  # fmt: skip
    by_name = {r.name: r for r in outcome.status.renditions}
    assert by_name["360p"].progress == 28.0  # (6 + 15) of 75 s
    assert by_name["720p"].progress == 2.4  # 30 % of the 6 s lead-in
    assert 2.4 < outcome.status.progress < 28.0


def test_every_slice_done_means_vod_playlists_and_succeeded() -> None:
    status = probed()
    slices = {rung: {i: piece(rung, i, 1_000_000 * (i + 1)) for i in range(4)}
              for rung in ("360p", "720p")}  # fmt: skip
    outcome = step(status, all_done(4), slices=slices)
    new = outcome.status
    assert new.phase == Phase.SUCCEEDED
    assert new.playable_at == NOW  # playable when it succeeded, if not before
    rung = new.renditions[1]
    assert (rung.phase, rung.slices_done, rung.bandwidth) == (
        RenditionPhase.SUCCEEDED,
        4,
        4_000_000,
    )
    averages = [500_000 * 6, 1_000_000 * 30, 1_500_000 * 30, 2_000_000 * 9]
    assert rung.average_bandwidth == round(sum(averages) / 75)
    assert rung.playlist == "v/1/720p/index.m3u8"
    write = outcome.write_playlists
    assert write is not None
    assert write.keys[-1] == "v/1/master.m3u8"  # after the media playlists it lists
    media = m3u8.loads(write.text("v/1/720p/index.m3u8"))
    assert (media.playlist_type, media.is_endlist, len(media.segments)) == ("vod", True, 13)
    assert write.fallback.phase == Phase.PACKAGING


def test_packaging_waits_for_a_slice_result_that_could_not_be_read() -> None:
    status = probed()
    slices = {"360p": {i: piece("360p", i) for i in range(4)},
              "720p": {i: piece("720p", i) for i in (0, 2, 3)}}  # fmt: skip
    outcome = step(status, all_done(4), slices=slices)
    assert outcome.status.phase == Phase.TRANSCODING  # 720p is not done without slice 1
    assert outcome.status.renditions[1].phase == RenditionPhase.RUNNING


def test_a_slice_out_of_retries_fails_the_rendition_with_the_workers_words() -> None:
    status = probed()
    failed = JobState("v1-720p", failed=3, failed_for_good=True, completions=4,
                      completed_indexes=frozenset({0}),
                      result={"event": "error", "message": "disk full"})  # fmt: skip
    outcome = step(status, {"v1-360p": running("v1-360p"), "v1-720p": failed},
                   slices={"720p": {0: piece("720p", 0)}})  # fmt: skip
    assert outcome.status.phase == Phase.FAILED
    assert outcome.status.message == "rendition 720p failed: disk full"


def test_a_retry_of_a_sliced_rendition_encodes_only_the_slices_not_stored() -> None:
    status = probed()
    failed = JobState("v1-720p", failed=3, failed_for_good=True, completions=4,
                      completed_indexes=frozenset({0, 2}),
                      result={"event": "error", "message": "disk full"})  # fmt: skip
    status = step(status, {"v1-360p": running("v1-360p"), "v1-720p": failed},
                  slices={"720p": {0: piece("720p", 0), 2: piece("720p", 2)}}).status  # fmt: skip
    rung = status.renditions[1]
    assert (rung.phase, rung.slices_done, rung.completed_slices) == (
        RenditionPhase.FAILED, 2, "0,2",
    )  # fmt: skip

    retried = next_status(
        Resource("v1", spec(), status, {RETRY_ANNOTATION: "again"}, generation=1),
        Observed({"v1-360p": running("v1-360p")}, {}, NOW), public_base_url=None, slicing=SETTINGS,
    ).status  # fmt: skip
    rung = retried.renditions[1]
    assert rung.job_name is not None
    assert rung.job_name != "v1-720p"  # a new Job
    assert (rung.phase, rung.slices, rung.slices_done, rung.completed_slices) == (
        RenditionPhase.PENDING, 4, 2, "0,2",
    )  # fmt: skip
    job = build_rendition_job(
        "v1", spec(), spec().renditions[1], JobSettings(), name=rung.job_name,  # type: ignore[index]
        source=SourceInfo.model_validate(SOURCE),
        slicing=Slicing(30, 4, 1, parse_indexes(rung.completed_slices)),
    )  # fmt: skip
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--done-slices") + 1] == "0,2"
    # Until the new Job's pods have reused them, the stored slices count: 36 s of 75 s.
    again = step(retried, {"v1-360p": running("v1-360p"), rung.job_name: running(rung.job_name)})
    assert again.status.renditions[1].progress == pytest.approx(48.0)
    assert again.status.renditions[1].completed_slices == "0,2"


def test_measured_together_takes_the_peak_and_the_weighted_average() -> None:
    result = measured_together("720p", [piece("720p", 1, 4_000_000), piece("720p", 0, 2_000_000)],
                               "v/1/720p/index.m3u8")  # fmt: skip
    # 1 Mb/s for 6 s and 2 Mb/s for 30 s
    assert (result.bandwidth, result.average_bandwidth) == (4_000_000, 1_833_333)
    assert (result.segment_count, result.duration_seconds) == (6, 36.0)
    assert result.playlist_key == "v/1/720p/index.m3u8"


def empty(rung: str, index: int) -> SliceResult:
    """A last slice the sound alone reaches: no picture, so no segments and no measurements."""
    return SliceResult(rendition=None, index=index, first_pts_seconds=None, segments=[],
                       result_key=f"v/1/{rung}/slice_{index}.json")  # fmt: skip


def test_an_empty_last_slice_succeeds_the_rendition_and_adds_nothing() -> None:
    # 66.2 s of sound, 66 s of pictures: 6 s, 30 s, 30 s, and a last slice without a picture.
    status = probed({**SOURCE, "durationSeconds": 66.2}, slicing=30)
    assert [r.slices for r in status.renditions] == [4, 4]
    slices = {rung: {0: piece(rung, 0), 1: piece(rung, 1), 2: piece(rung, 2, 3_000_000),
                     3: empty(rung, 3)}
              for rung in ("360p", "720p")}  # fmt: skip
    outcome = step(status, all_done(4), slices=slices, spec_=spec(slicing=30))
    assert outcome.status.phase == Phase.SUCCEEDED, outcome.status.message
    rung = outcome.status.renditions[1]
    assert (rung.phase, rung.slices_done, rung.bandwidth) == (
        RenditionPhase.SUCCEEDED, 4, 3_000_000,
    )  # fmt: skip
    # 0.5 Mb/s for 36 s and 1.5 Mb/s for 30 s, over the 66 s measured
    assert rung.average_bandwidth == round((0.5 * 36 + 1.5 * 30) / 66 * 1_000_000)
    assert rung.resolution == "640x360"
    write = outcome.write_playlists
    assert write is not None
    media = m3u8.loads(write.text("v/1/720p/index.m3u8"))
    assert (media.playlist_type, media.is_endlist) == ("vod", True)
    assert [s.uri for s in media.segments] == [f"seg_{n:05d}.m4s" for n in range(11)]
    assert [m.uri for m in media.segment_map] == ["init_0.mp4"]
    measured = measured_together("720p", slices["720p"].values(), "v/1/720p/index.m3u8")
    assert (measured.segment_count, measured.duration_seconds) == (11, 66.0)


def test_slice_indexes_read_and_write_as_kubernetes_writes_completed_indexes() -> None:
    assert parse_indexes("1,3-5,7") == {1, 3, 4, 5, 7}
    assert parse_indexes("") == frozenset()
    assert parse_indexes(None) == frozenset()
    assert format_indexes([]) == ""
    assert format_indexes([3]) == "3"
    assert format_indexes([0, 1, 2, 3]) == "0-3"
    assert format_indexes([4, 0, 2, 1]) == "0-2,4"
    assert format_indexes([5, 6]) == "5,6"  # a run of two is written as two numbers
    assert format_indexes([1, 3, 4, 5, 7, 9, 10]) == "1,3-5,7,9,10"
    assert parse_indexes(format_indexes([0, 2, 3, 4, 9])) == {0, 2, 3, 4, 9}


def test_free_pods_widen_sliced_jobs_one_each_per_round_in_queue_order() -> None:
    first = Widening(("ns", "a"), (0, "t1", "ns", "a", 0), parallelism=1, remaining=5, cap=4)
    second = Widening(("ns", "b"), (0, "t2", "ns", "b", 0), parallelism=1, remaining=2, cap=4)
    assert widths([second, first], free=1) == {("ns", "a"): 2}
    assert widths([second, first], free=2) == {("ns", "a"): 2, ("ns", "b"): 2}
    assert widths([second, first], free=10) == {("ns", "a"): 4, ("ns", "b"): 2}  # cap, slices
    assert widths([first], free=0) == {}
    wide = Widening(("ns", "c"), (0, "t3", "ns", "c", 0), parallelism=6, remaining=2, cap=4)
    assert widths([wide], free=5) == {}  # never narrower


def test_the_video_rungs_first_slices_are_queued_before_the_audio() -> None:
    """An audio pod holds its slot for the whole source, and stores its start within seconds
    wherever it comes: on a busy cluster the video's first slices go first."""
    track = {"index": 0, "codec": "aac", "channels": 2, "sampleRate": 48000, "default": True,
             "streamIndex": 1}  # fmt: skip
    status = probed({**SOURCE, "audioStreams": [track]})
    assert [r.name for r in status.renditions][1:] == ["360p", "720p"]  # audio listed first
    queue = Queue(kube=cast(Kube, None), job_settings=JobSettings(), limit=2)
    body = {"metadata": {"namespace": "ns", "name": "v1", "uid": "u1",
                         "creationTimestamp": NOW}}  # fmt: skip
    queue.offer(body, spec(), status, {})
    order = [entry.rendition for entry, _ in sorted(queue.waiting[("ns", "v1")])]
    assert order == ["360p", "720p", status.renditions[0].name]


def test_a_sliced_resources_first_slices_start_together_beyond_the_limit() -> None:
    def rung(resource: str, index: int, created: str = "t1") -> WaitingRung:
        return WaitingRung.of(
            namespace="ns", resource=resource, priority=0, created=created, index=index,
            rendition=f"r{index}", job_name=f"{resource}-r{index}",
        )  # fmt: skip

    ladder = [rung("a", 0), rung("a", 1), rung("a", 2)]
    later = [rung("b", 0, "t2"), rung("b", 1, "t2")]
    assert rungs_to_start([*ladder, *later], running=0, limit=2) == ladder[:2]  # unsliced
    sliced = rungs_to_start([*ladder, *later], running=0, limit=2, together={("ns", "a")})
    assert sliced == ladder  # the third rung comes along; b waits for room
    assert rungs_to_start([*ladder, *later], running=2, limit=2, together={("ns", "a")}) == []
