from typing import Any

import pytest

from transcode_operator.observe import JobState
from transcode_operator.outcomes import Outcome, PhaseEvent
from transcode_operator.reconcile import (
    SPEC_CHANGED,
    Observed,
    Resource,
    next_status,
    parse_spec,
    probe_job_name,
    rendition_job_name,
)
from transcode_operator.scheduling import WaitingRung, rungs_to_start
from videotranscode import (
    RETRY_ANNOTATION,
    Phase,
    Playback,
    RenditionPhase,
    RenditionSpec,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
)

SPEC = parse_spec(
    {
        "source": {"bucket": "uploads", "key": "a.mp4"},
        "output": {"bucket": "media", "prefix": "v/1"},
    }
)
SOURCE = {
    "durationSeconds": 30.0, "container": "mov,mp4", "sizeBytes": 1000,
    "video": {"codec": "h264", "width": 1280, "height": 720, "fps": 30.0, "frameRate": "30/1",
              "pixelFormat": "yuv420p", "rotation": 0},
    "audio": None,
}  # fmt: skip


def rung_result(name: str, height: int) -> dict[str, Any]:
    return {
        "name": name, "width": height * 16 // 9, "height": height, "frameRate": 30.0,
        "bandwidth": height * 5000, "averageBandwidth": height * 4000,
        "codecs": "avc1.64001f,mp4a.40.2", "segmentCount": 5, "durationSeconds": 30.0,
        "playlistKey": f"v/1/{name}/index.m3u8",
    }  # fmt: skip


def step(
    status: VideoTranscodeStatus,
    jobs: dict[str, JobState] | None = None,
    *,
    live: dict[str, float] | None = None,
    annotations: dict[str, str] | None = None,
    spec: VideoTranscodeSpec = SPEC,
) -> Outcome:
    return next_status(
        Resource("v1", spec, status, annotations or {}, generation=1),
        Observed(jobs or {}, live or {}, now="2026-11-24T10:00:00Z"),
        public_base_url="https://cdn.example/",
    )


def probed() -> VideoTranscodeStatus:
    probe = JobState("v1-probe", succeeded=1, complete=True, result={"source": SOURCE})
    return step(VideoTranscodeStatus(), {"v1-probe": probe}).status


def test_a_new_resource_starts_probing() -> None:
    outcome = step(VideoTranscodeStatus())
    assert outcome.create_probe
    assert outcome.status.phase == Phase.PROBING
    assert outcome.status.started_at == "2026-11-24T10:00:00Z"
    assert outcome.events == [PhaseEvent(Phase.PROBING, "Probing")]
    running = step(outcome.status, {"v1-probe": JobState("v1-probe", active=1)})
    assert not running.create_probe
    assert running.events == []


def test_a_bad_source_fails_with_the_workers_words() -> None:
    probe = JobState(
        "v1-probe", failed=1, failed_for_good=True, reason="PodFailurePolicy",
        result={"event": "error", "exitCode": 2, "message": "the file is empty (0 bytes)"},
    )  # fmt: skip
    status = step(VideoTranscodeStatus(), {"v1-probe": probe}).status
    assert status.phase == Phase.FAILED
    assert status.message == "probe failed: the file is empty (0 bytes)"
    assert status.completed_at == "2026-11-24T10:00:00Z"
    ready = status.conditions[0]
    assert (ready.type, ready.status, ready.reason) == ("Ready", "False", "Failed")


def test_the_probe_result_chooses_a_ladder_capped_at_the_source() -> None:
    status = probed()
    assert status.phase == Phase.QUEUED
    assert status.source is not None
    assert status.source.video.height == 720
    assert [(r.name, r.job_name, r.phase) for r in status.renditions] == [
        ("360p", "v1-360p", RenditionPhase.PENDING),
        ("540p", "v1-540p", RenditionPhase.PENDING),
        ("720p", "v1-720p", RenditionPhase.PENDING),
    ]
    assert status.renditions_summary == "0/3"


def test_running_rungs_roll_up_progress_weighted_by_pixels_and_never_back() -> None:
    status = probed()
    jobs = {"v1-360p": JobState("v1-360p", active=1), "v1-720p": JobState("v1-720p", active=1)}
    status = step(status, jobs, live={"360p": 50.0, "720p": 10.0}).status
    assert status.phase == Phase.TRANSCODING
    assert [r.progress for r in status.renditions] == [50.0, 0.0, 10.0]
    weights = [360**2, 540**2, 720**2]
    assert status.progress == pytest.approx(
        (50 * weights[0] + 10 * weights[2]) / sum(weights), abs=0.1
    )
    later = step(status, jobs, live={"360p": 40.0, "720p": 12.0}).status
    assert [r.progress for r in later.renditions] == [50.0, 0.0, 12.0]


def test_all_rungs_done_means_succeeded_once_the_master_is_written() -> None:
    """One pass: Succeeded with the master playlist to write first; should writing it fail,
    the status written instead is Packaging."""
    status = probed()
    jobs = {
        f"v1-{name}": JobState(
            f"v1-{name}", succeeded=1, complete=True, result=rung_result(name, h)
        )
        for name, h in [("360p", 360), ("540p", 540), ("720p", 720)]
    }
    outcome = step(status, jobs)
    master = outcome.write_playlists
    assert master
    assert (master.bucket, master.keys) == ("media", ["v/1/master.m3u8"])
    text = master.text("v/1/master.m3u8")
    assert sorted(line for line in text.splitlines() if not line.startswith("#")) == [
        "360p/index.m3u8", "540p/index.m3u8", "720p/index.m3u8",
    ]  # fmt: skip
    assert master.fallback.phase == Phase.PACKAGING
    assert master.fallback_events == [PhaseEvent(Phase.PACKAGING, "Packaging")]
    rung = master.fallback.renditions[2]
    assert (rung.phase, rung.bandwidth, rung.resolution, rung.playlist) == (
        RenditionPhase.SUCCEEDED, 3_600_000, "1280x720", "v/1/720p/index.m3u8",
    )  # fmt: skip
    done = outcome.status
    assert done.phase == Phase.SUCCEEDED
    assert done.playback == Playback(
        master_playlist="v/1/master.m3u8", url="https://cdn.example/v/1/master.m3u8",
        thumbnail="v/1/poster.jpg",
    )  # fmt: skip
    assert outcome.events == [
        PhaseEvent(Phase.PACKAGING, "Packaging"), PhaseEvent(Phase.SUCCEEDED, "Succeeded"),
    ]  # fmt: skip
    assert done.progress == 100
    assert done.renditions_summary == "3/3"
    assert done.conditions[0].status == "True"
    assert done.completed_at == "2026-11-24T10:00:00Z"
    later = step(done, {})  # the Jobs have expired: the recorded results remain
    assert later.status == done
    assert not later.write_playlists
    assert later.status.renditions[2].bandwidth == 3_600_000


def test_a_rung_failing_for_good_fails_the_resource_and_a_retry_reruns_only_it() -> None:
    status = probed()
    jobs = {
        "v1-360p": JobState("v1-360p", succeeded=1, complete=True, result=rung_result("360p", 360)),
        "v1-540p": JobState("v1-540p", active=1),
        "v1-720p": JobState(
            "v1-720p", failed=3, failed_for_good=True, reason="BackoffLimitExceeded"
        ),
    }
    failed = step(status, jobs).status
    assert failed.phase == Phase.FAILED
    assert failed.message == "rendition 720p failed: BackoffLimitExceeded"
    assert failed.renditions[2].attempts == 3

    retried = step(failed, jobs, annotations={RETRY_ANNOTATION: "1"}).status
    new_job = rendition_job_name("v1", "720p", "1")
    assert new_job != "v1-720p"
    assert [(r.name, r.phase, r.job_name) for r in retried.renditions] == [
        ("360p", RenditionPhase.SUCCEEDED, "v1-360p"),
        ("540p", RenditionPhase.RUNNING, "v1-540p"),
        ("720p", RenditionPhase.PENDING, new_job),
    ]
    assert retried.phase == Phase.TRANSCODING
    assert retried.completed_at is None
    again = step(retried, jobs, annotations={RETRY_ANNOTATION: "1"}).status
    assert again.renditions[2].job_name == new_job  # applying the same retry twice is harmless


def test_a_failed_probe_is_retried_under_a_new_name() -> None:
    assert probe_job_name("v1", None) == "v1-probe"
    assert probe_job_name("v1", "2") != "v1-probe"
    outcome = step(VideoTranscodeStatus(phase=Phase.FAILED), annotations={RETRY_ANNOTATION: "2"})
    assert outcome.create_probe
    assert outcome.status.phase == Phase.PROBING


def test_invalid_specs_explain_themselves() -> None:
    with pytest.raises(ValueError, match=r"invalid spec: .*segmentSeconds must be a multiple"):
        parse_spec({**SPEC.model_dump(by_alias=True), "segmentSeconds": 5})
    with pytest.raises(ValueError, match=r"output: Field required"):
        parse_spec({"source": {"url": "https://example.com/a.mp4"}})


def test_the_queue_starts_higher_priority_then_older_first() -> None:
    def rung(resource: str, priority: int, created: str, index: int) -> WaitingRung:
        return WaitingRung.of(
            namespace="ns", resource=resource, priority=priority, created=created,
            index=index, rendition=f"r{index}", job_name=f"{resource}-r{index}",
        )  # fmt: skip

    waiting = [rung("old", 0, "2026-01-01", 0), rung("old", 0, "2026-01-01", 1),
               rung("urgent", 5, "2026-06-01", 0), rung("new", 0, "2026-06-01", 0)]  # fmt: skip
    assert [w.job_name for w in rungs_to_start(waiting, running=0, limit=3)] == [
        "urgent-r0", "old-r0", "old-r1",
    ]  # fmt: skip
    assert [w.job_name for w in rungs_to_start(waiting, running=1, limit=2)] == ["urgent-r0"]
    assert rungs_to_start(waiting, running=3, limit=2) == []


def test_a_complete_job_whose_pod_is_not_seen_yet_is_still_running() -> None:
    """Jobs and pods come through separate watches: the result may arrive second."""
    status = probed()
    jobs = {"v1-360p": JobState("v1-360p", succeeded=1, complete=True, result=None)}
    rung = step(status, jobs).status.renditions[0]
    assert rung.phase == RenditionPhase.RUNNING
    probe = JobState("v1-probe", succeeded=1, complete=True, result=None)
    assert step(VideoTranscodeStatus(), {"v1-probe": probe}).status.phase == Phase.PROBING


def edited(**changes: Any) -> VideoTranscodeSpec:
    return SPEC.model_copy(update=changes)


def test_the_spec_a_transcode_started_with_is_recorded() -> None:
    status = step(VideoTranscodeStatus()).status
    assert status.spec_hash == SPEC.fingerprint()
    assert step(status, spec=edited(priority=9)).status.spec_hash == SPEC.fingerprint()


def test_a_changed_spec_fails_the_transcode_and_starts_nothing_new() -> None:
    status = probed()
    jobs = {"v1-360p": JobState("v1-360p", active=1)}
    ladder = [RenditionSpec(name="360p", height=360, video_bitrate=400_000)]
    outcome = step(status, jobs, spec=edited(renditions=ladder), live={"360p": 30.0})
    new = outcome.status
    assert (new.phase, new.message) == (Phase.FAILED, SPEC_CHANGED)
    assert new.spec_hash == SPEC.fingerprint()  # what was started, still
    assert [(r.name, r.phase, r.progress) for r in new.renditions] == [
        ("360p", RenditionPhase.RUNNING, 30.0),
        ("540p", RenditionPhase.PENDING, 0.0),
        ("720p", RenditionPhase.PENDING, 0.0),
    ]
    assert outcome.events == [PhaseEvent(Phase.FAILED, f"Failed: {SPEC_CHANGED}")]
    assert not outcome.create_probe
    assert not outcome.write_playlists


def test_a_spec_changed_while_probing_creates_no_probe_for_it() -> None:
    probing = step(VideoTranscodeStatus()).status
    moved = edited(output=SPEC.output.model_copy(update={"prefix": "v/2"}))
    outcome = step(probing, spec=moved, annotations={RETRY_ANNOTATION: "1"})
    assert outcome.status.phase == Phase.FAILED
    assert not outcome.create_probe


def test_a_finished_transcode_keeps_its_phase_when_its_spec_changes() -> None:
    done = probed().model_copy(update={"phase": Phase.SUCCEEDED})
    later = step(done, spec=edited(segment_type="mpegts")).status
    assert (later.phase, later.message) == (Phase.SUCCEEDED, SPEC_CHANGED)


def test_a_resource_started_before_spec_hashes_is_checked_by_its_ladder() -> None:
    legacy = probed().model_copy(update={"spec_hash": None})
    assert step(legacy).status.phase == Phase.QUEUED
    ladder = [RenditionSpec(name="360p", height=360, video_bitrate=400_000)]
    changed = step(legacy, spec=edited(renditions=ladder)).status
    assert changed.phase == Phase.FAILED
    assert changed.spec_hash is None  # the edited spec is not adopted


def test_a_rung_whose_pod_waits_is_pending_with_the_reason() -> None:
    status = probed()
    reason = "0/3 nodes are available: 3 Insufficient cpu."
    jobs = {"v1-360p": JobState("v1-360p", active=1, waiting=reason)}
    new = step(status, jobs).status
    assert (new.renditions[0].phase, new.renditions[0].message) == (RenditionPhase.PENDING, reason)
    assert new.renditions[0].attempts == 1
    assert new.phase == Phase.QUEUED  # nothing runs yet
    started = step(new, {"v1-360p": JobState("v1-360p", active=1)}).status
    assert (started.renditions[0].phase, started.renditions[0].message) == (
        RenditionPhase.RUNNING, None,
    )  # fmt: skip
    assert started.phase == Phase.TRANSCODING


def test_a_probe_whose_pod_waits_says_why() -> None:
    reason = "0/3 nodes are available: 3 Insufficient ephemeral-storage."
    probe = JobState("v1-probe", active=1, waiting=reason)
    status = step(step(VideoTranscodeStatus()).status, {"v1-probe": probe}).status
    assert (status.phase, status.message) == (Phase.PROBING, reason)
    running = step(status, {"v1-probe": JobState("v1-probe", active=1)}).status
    assert (running.phase, running.message) == (Phase.PROBING, None)
