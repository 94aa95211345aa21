"""What a VideoTranscode should look like now: one pure pass from its spec, its last status
and the observed Jobs to the next status and the effects that status needs."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from transcode_operator.jobs import ROLE_PROBE, job_name
from transcode_operator.observe import JobState
from transcode_operator.outcomes import (
    CreateProbe,
    Effect,
    Outcome,
    PhaseEvent,
    StopJobs,
    WriteMaster,
)
from videotranscode import (
    CANCEL_ANNOTATION,
    DEFAULT_LADDER,
    MASTER_PLAYLIST,
    MUTABLE_SPEC_FIELDS,
    POSTER,
    RETRY_ANNOTATION,
    Condition,
    Phase,
    Playback,
    RenditionPhase,
    RenditionResult,
    RenditionSpec,
    RenditionStatus,
    SourceInfo,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
    build_master_playlist,
    select_ladder,
)

CANCELLED_BY_REQUEST = "cancelled on request"
CANCELLED_BY_DELETION = "the VideoTranscode was deleted before it finished"
SPEC_CHANGED = (
    f"the spec changed after the transcode started (only {' and '.join(MUTABLE_SPEC_FIELDS)} "
    "may change): delete and create a new VideoTranscode"
)


def parse_spec(spec: Mapping[str, Any]) -> VideoTranscodeSpec:
    """The spec model, or ValueError with a message a user can act on."""
    try:
        return VideoTranscodeSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'spec'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(f"invalid spec: {problems}") from exc


def retry_suffix(token: str | None) -> str:
    """Jobs of a retry get new names, so failed Jobs never block their replacements."""
    return "" if not token else "-" + hashlib.sha256(token.encode()).hexdigest()[:5]


def probe_job_name(resource: str, token: str | None) -> str:
    return job_name(resource, ROLE_PROBE + retry_suffix(token))


def rendition_job_name(resource: str, rung: str, token: str | None) -> str:
    return job_name(resource, rung + retry_suffix(token))


def choose_ladder(spec: VideoTranscodeSpec, source: SourceInfo) -> list[RenditionSpec]:
    short_side = min(source.video.width, source.video.height)
    return select_ladder(spec.renditions or list(DEFAULT_LADDER), short_side)


def spec_changed(spec: VideoTranscodeSpec, status: VideoTranscodeStatus) -> bool:
    """Whether the spec no longer describes the transcode that started (where the API server
    lacks the CRD's immutability rule, an edit gets through)."""
    if status.spec_hash is not None and status.spec_hash != spec.fingerprint():
        return True
    # Started before specHash was recorded: the ladder at least must still be the spec's.
    if status.source is None or not status.renditions:
        return False
    ladder = {rung.name for rung in choose_ladder(spec, status.source)}
    return {rung.name for rung in status.renditions} != ladder


def _rung_status(
    previous: RenditionStatus, job: JobState | None, live_progress: float | None
) -> RenditionStatus:
    if job is None:
        return previous  # not started, or finished and already recorded (Jobs expire)
    if job.complete and job.result is not None:
        if previous.phase == RenditionPhase.SUCCEEDED:
            return previous
        try:
            result = RenditionResult.model_validate(job.result)
        except ValidationError:
            return previous.model_copy(
                update={"phase": RenditionPhase.FAILED, "message": "the worker left no result"}
            )
        return previous.model_copy(
            update={
                "phase": RenditionPhase.SUCCEEDED,
                "progress": 100.0,
                "attempts": job.attempts,
                "bandwidth": result.bandwidth,
                "average_bandwidth": result.average_bandwidth,
                "resolution": f"{result.width}x{result.height}",
                "frame_rate": result.frame_rate,
                "codecs": result.codecs,
                "playlist": result.playlist_key,
                "message": None,
            }
        )
    if job.failed_for_good:
        return previous.model_copy(
            update={"phase": RenditionPhase.FAILED, "attempts": job.attempts, "message": job.error}
        )
    # A Job whose pod has not started (unschedulable, pulling its image) is still Pending.
    started = job.waiting is None
    return previous.model_copy(
        update={
            "phase": RenditionPhase.RUNNING if started else RenditionPhase.PENDING,
            "attempts": job.attempts,
            "progress": max(previous.progress, live_progress or 0.0),
            "message": job.waiting or None,
        }
    )


def _retried(rung: RenditionStatus, resource: str, token: str | None) -> RenditionStatus:
    """A failed or cancelled rung under a new retry token starts over in a new Job."""
    new_name = rendition_job_name(resource, rung.name, token)
    again = (RenditionPhase.FAILED, RenditionPhase.CANCELLED)
    if rung.phase not in again or rung.job_name == new_name:
        return rung
    return RenditionStatus(name=rung.name, job_name=new_name, attempts=rung.attempts)


def rendition_to_result(rung: RenditionStatus) -> RenditionResult:
    width, height = (int(side) for side in (rung.resolution or "0x0").split("x"))
    return RenditionResult(
        name=rung.name,
        width=width,
        height=height,
        frame_rate=rung.frame_rate or 0,
        bandwidth=rung.bandwidth or 0,
        average_bandwidth=rung.average_bandwidth or 0,
        codecs=rung.codecs or "",
        segment_count=0,
        duration_seconds=0,
        playlist_key=rung.playlist or "",
    )


def overall_progress(renditions: list[RenditionStatus], heights: Mapping[str, int]) -> float:
    """Mean rung progress weighted by pixels (height²), the rough cost of each rung."""
    weights = {r.name: heights.get(r.name, 1) ** 2 for r in renditions}
    total = sum(weights.values())
    if not total:
        return 0.0
    return round(sum(r.progress * weights[r.name] for r in renditions) / total, 1)


def _phase(renditions: list[RenditionStatus], playback: Playback | None) -> Phase:
    phases = {r.phase for r in renditions}
    if RenditionPhase.FAILED in phases:
        return Phase.FAILED
    if RenditionPhase.CANCELLED in phases:  # until a retry token runs them again
        return Phase.CANCELLED
    if phases == {RenditionPhase.SUCCEEDED}:
        return Phase.SUCCEEDED if playback else Phase.PACKAGING
    if phases & {RenditionPhase.RUNNING, RenditionPhase.SUCCEEDED}:
        return Phase.TRANSCODING
    return Phase.QUEUED


def _ready_condition(
    phase: Phase, message: str | None, now: str, previous: list[Condition]
) -> Condition:
    status = "True" if phase == Phase.SUCCEEDED else "False"
    old = next((c for c in previous if c.type == "Ready"), None)
    since = old.last_transition_time if old and old.status == status else now
    return Condition(
        type="Ready",
        status=status,
        reason=phase.value,
        message=message or "",
        last_transition_time=since,
    )


@dataclass(frozen=True)
class Resource:
    """A VideoTranscode as a pass reads it."""

    name: str
    spec: VideoTranscodeSpec
    status: VideoTranscodeStatus
    annotations: Mapping[str, str] = field(default_factory=dict)
    generation: int | None = None


@dataclass(frozen=True)
class Observed:
    """What a pass sees besides the resource: its Jobs, its workers' live progress, the time."""

    jobs: Mapping[str, JobState]
    live_progress: Mapping[str, float]
    now: str


def next_status(resource: Resource, observed: Observed, *, public_base_url: str | None) -> Outcome:
    """The resource's next status and the effects it needs: create its probe Job, stop its
    Jobs, write its master playlist. Rendition Jobs are started by the scheduler, not here.
    With the cancel annotation, whatever has not finished ends `Cancelled`."""
    outcome = _advance(resource, observed)
    now = observed.now
    if CANCEL_ANNOTATION in resource.annotations and outcome.status.phase not in _ENDED:
        cancel = cancelled(outcome.status, CANCELLED_BY_REQUEST)
        return _finish(cancel, resource.status, now, StopJobs())
    if outcome.status.phase == Phase.PACKAGING:
        return _packaged(outcome, resource.spec, now, public_base_url)
    return outcome


def playback_of(spec: VideoTranscodeSpec, public_base_url: str | None) -> Playback:
    """Where the finished transcode plays from: the keys follow from the spec."""
    key = f"{spec.output.prefix}/{MASTER_PLAYLIST}"
    return Playback(
        master_playlist=key,
        url=f"{public_base_url.rstrip('/')}/{key}" if public_base_url else None,
        thumbnail=f"{spec.output.prefix}/{POSTER}" if spec.thumbnail.enabled else None,
    )


def _packaged(
    unpackaged: Outcome, spec: VideoTranscodeSpec, now: str, public_base_url: str | None
) -> Outcome:
    """Every rung is done: Succeeded, once the master playlist listing them is written."""
    rungs = unpackaged.status.renditions
    playback = playback_of(spec, public_base_url)
    succeeded = _finish(
        unpackaged.status.model_copy(
            update={"phase": Phase.SUCCEEDED, "progress": 100.0, "playback": playback}
        ),
        unpackaged.status,
        now,
    )
    master = WriteMaster(
        bucket=spec.output.bucket,
        key=playback.master_playlist,
        playlist=build_master_playlist([rendition_to_result(rung) for rung in rungs]),
        unpackaged=unpackaged.status,
        unpackaged_events=unpackaged.events,
    )
    return Outcome(succeeded.status, unpackaged.events + succeeded.events, (master,))


def master_failed(status: VideoTranscodeStatus, error: str) -> VideoTranscodeStatus:
    """The unpackaged status, saying why it is still not packaged."""
    return status.model_copy(
        update={"message": f"writing the master playlist failed, retrying: {error}"}
    )


def spec_rejected(status: VideoTranscodeStatus, problem: str, now: str) -> Outcome:
    """An invalid spec fails the resource at once, saying what is wrong."""
    failed = status.model_copy(update={
        "phase": Phase.FAILED, "message": problem, "completed_at": status.completed_at or now,
    })  # fmt: skip
    return Outcome(failed, [PhaseEvent(Phase.FAILED, f"Failed: {problem}")])


_ENDED = (Phase.SUCCEEDED, Phase.FAILED)  # a cancel changes nothing any more


def cancelled(status: VideoTranscodeStatus, message: str) -> VideoTranscodeStatus:
    """`status` stopped: rungs that had not finished, and the resource, are Cancelled."""
    renditions = [
        rung.model_copy(update={"phase": RenditionPhase.CANCELLED, "message": message})
        if rung.phase in (RenditionPhase.PENDING, RenditionPhase.RUNNING)
        else rung
        for rung in status.renditions
    ]
    return status.model_copy(
        update={"phase": Phase.CANCELLED, "renditions": renditions, "message": message}
    )


def _advance(resource: Resource, observed: Observed) -> Outcome:
    name, spec, status = resource.name, resource.spec, resource.status
    jobs, live_progress, now = observed.jobs, observed.live_progress, observed.now
    token = resource.annotations.get(RETRY_ANNOTATION)
    base: dict[str, Any] = {
        "observed_generation": resource.generation,
        "started_at": status.started_at or now,
    }
    if spec_changed(spec, status):
        return _as_started(status, base, jobs, live_progress, now)
    base["spec_hash"] = status.spec_hash or spec.fingerprint()

    if status.source is None:
        probe = jobs.get(probe_job_name(name, token))
        if probe is not None and probe.failed_for_good:
            new = status.model_copy(
                update={**base, "phase": Phase.FAILED, "message": f"probe failed: {probe.error}"}
            )
            return _finish(new, status, now)
        if probe is None or not probe.complete or probe.result is None:
            waiting = probe.waiting if probe is not None else None  # e.g. unschedulable
            new = status.model_copy(
                update={**base, "phase": Phase.PROBING, "message": waiting or None}
            )
            create = [CreateProbe(probe_job_name(name, token))] if probe is None else []
            return _finish(new, status, now, *create)
        try:
            source = SourceInfo.model_validate((probe.result or {}).get("source", {}))
        except ValidationError:
            new = status.model_copy(
                update={**base, "phase": Phase.FAILED, "message": "the probe left no result"}
            )
            return _finish(new, status, now)
        renditions = [
            RenditionStatus(name=rung.name, job_name=rendition_job_name(name, rung.name, token))
            for rung in choose_ladder(spec, source)
        ]
        status = status.model_copy(update={"source": source, "renditions": renditions})

    renditions = []
    for previous in status.renditions:
        rung = _retried(previous, name, token)
        job = jobs.get(rung.job_name or "")
        renditions.append(_rung_status(rung, job, live_progress.get(rung.name)))
    heights = {r.name: r.height for r in (spec.renditions or DEFAULT_LADDER)}
    phase = _phase(renditions, status.playback)
    failed = [r for r in renditions if r.phase == RenditionPhase.FAILED]
    message = f"rendition {failed[0].name} failed: {failed[0].message}" if failed else None
    ready = sum(r.phase == RenditionPhase.SUCCEEDED for r in renditions)
    new = status.model_copy(
        update={
            **base,
            "phase": phase,
            "renditions": renditions,
            "renditions_summary": f"{ready}/{len(renditions)}",
            "progress": 100.0
            if phase == Phase.SUCCEEDED
            else overall_progress(renditions, heights),
            "message": message,
        }
    )
    return _finish(new, status, now)


def _as_started(
    status: VideoTranscodeStatus,
    base: dict[str, Any],
    jobs: Mapping[str, JobState],
    live_progress: Mapping[str, float],
    now: str,
) -> Outcome:
    """A changed spec: the Jobs already started are still rolled up, nothing new starts (no
    probe, no rung, no retry), and an unfinished transcode fails saying what to do."""
    renditions = [
        _rung_status(rung, jobs.get(rung.job_name or ""), live_progress.get(rung.name))
        for rung in status.renditions
    ]
    new = status.model_copy(
        update={
            **base,
            "phase": status.phase if status.phase.finished else Phase.FAILED,
            "renditions": renditions,
            "message": SPEC_CHANGED,
        }
    )
    return _finish(new, status, now)


def _finish(
    new: VideoTranscodeStatus, old: VideoTranscodeStatus, now: str, *effects: Effect
) -> Outcome:
    completed = now if new.phase.finished and not old.phase.finished else None
    new = new.model_copy(
        update={
            "completed_at": (old.completed_at or completed) if new.phase.finished else None,
            "conditions": [_ready_condition(new.phase, new.message, now, old.conditions)],
        }
    )
    message = f"{new.phase.value}: {new.message}" if new.message else new.phase.value
    events = [PhaseEvent(new.phase, message)] if new.phase != old.phase else []
    return Outcome(new, events, effects)
