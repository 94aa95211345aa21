"""Cancel and retry in the pure reconcile: the `hlsforge.dev/cancel` annotation stops what has
not finished; a new retry token runs the failed and cancelled parts again."""

from typing import Any

from transcode_operator.observe import JobState
from transcode_operator.outcomes import Outcome, PhaseEvent
from transcode_operator.reconcile import (
    Observed,
    Resource,
    next_status,
    parse_spec,
    probe_job_name,
    rendition_job_name,
)
from videotranscode import (
    CANCEL_ANNOTATION,
    RETRY_ANNOTATION,
    Phase,
    Playback,
    RenditionPhase,
    VideoTranscodeStatus,
)

SPEC = parse_spec({
    "source": {"bucket": "uploads", "key": "a.mp4"}, "output": {"bucket": "media", "prefix": "v/1"},
    "renditions": [{"name": "360p", "height": 360, "videoBitrate": "800k"},
                   {"name": "540p", "height": 540, "videoBitrate": "2000k"},
                   {"name": "720p", "height": 720, "videoBitrate": "3000k"}],
})  # fmt: skip
SOURCE = {
    "durationSeconds": 30.0, "container": "mov,mp4", "sizeBytes": 1000,
    "video": {"codec": "h264", "width": 1280, "height": 720, "fps": 30.0, "frameRate": "30/1",
              "pixelFormat": "yuv420p", "rotation": 0},
    "audio": None,
}  # fmt: skip
NOW = "2026-11-24T10:00:00Z"
CANCEL = {CANCEL_ANNOTATION: "true"}


def step(
    status: VideoTranscodeStatus, jobs: dict[str, JobState] | None = None,
    annotations: dict[str, str] | None = None,
) -> Outcome:  # fmt: skip
    return next_status(
        Resource("v1", SPEC, status, annotations or {}, generation=1),
        Observed(jobs or {}, live_progress={}, now=NOW),
        public_base_url=None,
    )


def done(name: str, height: int) -> JobState:
    result: dict[str, Any] = {
        "name": name, "width": height * 16 // 9, "height": height, "frameRate": 30.0,
        "bandwidth": 1000, "averageBandwidth": 900, "codecs": "avc1.64001f,mp4a.40.2",
        "segmentCount": 5, "durationSeconds": 30.0, "playlistKey": f"v/1/{name}/index.m3u8",
    }  # fmt: skip
    return JobState(f"v1-{name}", succeeded=1, complete=True, result=result)


def transcoding() -> tuple[VideoTranscodeStatus, dict[str, JobState]]:
    """360p done, 540p running, 720p waiting for a slot."""
    probe = JobState("v1-probe", succeeded=1, complete=True, result={"source": SOURCE})
    status = step(VideoTranscodeStatus(), {"v1-probe": probe}).status
    jobs = {"v1-360p": done("360p", 360), "v1-540p": JobState("v1-540p", active=1)}
    status = step(status, jobs).status
    assert status.phase == Phase.TRANSCODING
    return status, jobs


def test_a_cancel_stops_what_has_not_finished_and_keeps_what_has() -> None:
    status, jobs = transcoding()
    outcome = step(status, jobs, CANCEL)
    assert outcome.stop_jobs
    new = outcome.status
    assert new.phase == Phase.CANCELLED
    assert [(r.name, r.phase) for r in new.renditions] == [
        ("360p", RenditionPhase.SUCCEEDED),
        ("540p", RenditionPhase.CANCELLED),
        ("720p", RenditionPhase.CANCELLED),
    ]
    assert new.message == "cancelled on request"
    assert new.completed_at == NOW
    assert outcome.events == [PhaseEvent(Phase.CANCELLED, "Cancelled: cancelled on request")]
    assert (new.conditions[0].status, new.conditions[0].reason) == ("False", "Cancelled")
    # The Jobs vanish (deleted): it stays cancelled, and nothing is started again.
    later = step(new, {"v1-360p": jobs["v1-360p"]}, CANCEL)
    assert later.status == new
    assert later.events == []


def test_a_cancel_while_probing_starts_no_probe() -> None:
    outcome = step(VideoTranscodeStatus(), {}, CANCEL)
    assert (outcome.status.phase, outcome.create_probe) == (Phase.CANCELLED, False)
    assert not step(outcome.status, {}, CANCEL).create_probe


def test_a_cancel_changes_nothing_once_the_transcode_has_ended() -> None:
    status, _ = transcoding()
    failed_jobs = {"v1-540p": JobState("v1-540p", failed=3, failed_for_good=True, reason="x")}
    failed = step(status, failed_jobs).status
    assert step(failed, failed_jobs, CANCEL).status == failed
    succeeded = status.model_copy(update={
        "phase": Phase.SUCCEEDED, "playback": Playback(master_playlist="v/1/master.m3u8"),
        "renditions": [r.model_copy(update={"phase": RenditionPhase.SUCCEEDED})
                       for r in status.renditions],
    })  # fmt: skip
    outcome = step(succeeded, {}, CANCEL)
    assert (outcome.status.phase, outcome.stop_jobs) == (Phase.SUCCEEDED, False)


def test_a_retry_after_a_cancel_reruns_the_cancelled_rungs_only() -> None:
    status, jobs = transcoding()
    cancelled = step(status, jobs, CANCEL).status
    # Removing the cancel alone runs nothing again: the retry token does.
    assert step(cancelled, {"v1-360p": jobs["v1-360p"]}).status.phase == Phase.CANCELLED
    retried = step(cancelled, {"v1-360p": jobs["v1-360p"]}, {RETRY_ANNOTATION: "r1"}).status
    assert [(r.name, r.phase, r.job_name) for r in retried.renditions] == [
        ("360p", RenditionPhase.SUCCEEDED, "v1-360p"),
        ("540p", RenditionPhase.PENDING, rendition_job_name("v1", "540p", "r1")),
        ("720p", RenditionPhase.PENDING, rendition_job_name("v1", "720p", "r1")),
    ]
    assert retried.phase == Phase.TRANSCODING
    assert (retried.completed_at, retried.message) == (None, None)


def test_a_retry_after_a_cancelled_probe_probes_again() -> None:
    cancelled = step(VideoTranscodeStatus(), {}, CANCEL).status
    outcome = step(cancelled, {}, {RETRY_ANNOTATION: "r1"})
    assert (outcome.status.phase, outcome.create_probe) == (Phase.PROBING, True)
    assert probe_job_name("v1", "r1") != probe_job_name("v1", None)
