"""What a VideoTranscode should look like now: one pure pass from its spec, its last status
and the observed Jobs to the next status and the effects that status needs."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from transcode_operator.jobs import ROLE_PROBE, job_name
from transcode_operator.ladder import audio_plan, audio_result, choose_ladder, video_result
from transcode_operator.observe import JobState
from transcode_operator.outcomes import (
    CreateProbe,
    Effect,
    Outcome,
    PhaseEvent,
    StopJobs,
    WritePlaylists,
)
from transcode_operator.settings import SlicingSettings
from transcode_operator.slices import (
    measured_together,
    rendition_progress,
    slice_durations,
    slice_seconds_for,
)
from videotranscode import (
    CANCEL_ANNOTATION,
    DEFAULT_LADDER,
    MASTER_PLAYLIST,
    MUTABLE_SPEC_FIELDS,
    POSTER,
    RETRY_ANNOTATION,
    AudioRenditionResult,
    Condition,
    Phase,
    Playback,
    RenditionPhase,
    RenditionResult,
    RenditionStatus,
    SliceResult,
    SourceInfo,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
    build_master_playlist,
    finished_prefix,
    is_audio_rendition,
    media_playlist,
    stitch_media_playlist,
)
from videotranscode.slicing import format_indexes, parse_indexes

CANCELLED_BY_REQUEST = "cancelled on request"
CANCELLED_BY_DELETION = "the VideoTranscode was deleted before it finished"
SPEC_CHANGED = (
    "the spec changed after the transcode started (only "
    f"{', '.join(MUTABLE_SPEC_FIELDS[:-1])} and {MUTABLE_SPEC_FIELDS[-1]} "
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


def spec_changed(spec: VideoTranscodeSpec, status: VideoTranscodeStatus) -> bool:
    """Whether the spec no longer describes the transcode that started (where the API server
    lacks the CRD's immutability rule, an edit gets through)."""
    if status.spec_hash is not None and status.spec_hash != spec.fingerprint():
        return True
    # Started before specHash was recorded: the ladder at least must still be the spec's.
    if status.source is None or not status.renditions:
        return False
    ladder = {rung.name for rung in choose_ladder(spec, status.source)}
    return {r.name for r in status.renditions if not is_audio_rendition(r.name)} != ladder


def _rung_status(
    previous: RenditionStatus, job: JobState | None, live_progress: float | None
) -> RenditionStatus:
    if job is None:
        return previous  # not started, or finished and already recorded (Jobs expire)
    if job.complete and job.result is not None:
        if previous.phase == RenditionPhase.SUCCEEDED:
            return previous
        kind = AudioRenditionResult if is_audio_rendition(previous.name) else RenditionResult
        try:
            result: RenditionResult | AudioRenditionResult = kind.model_validate(job.result)
        except ValidationError:
            return previous.model_copy(
                update={"phase": RenditionPhase.FAILED, "message": "the worker left no result"}
            )
        return previous.model_copy(update={"attempts": job.attempts, **_measured(result)})
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


def _sliced_rung_status(
    previous: RenditionStatus, job: JobState | None, *, results: Mapping[int, SliceResult],
    live_progress: Mapping[int, float], durations: list[float], playlist_key: str,
) -> RenditionStatus:  # fmt: skip
    """A rendition encoded by an Indexed Job, one slice per index: done when every slice's
    result is stored, its measurements those of all its slices together."""
    if job is None or previous.phase == RenditionPhase.SUCCEEDED:
        return previous
    done = set(results) & set(range(len(durations)))
    # An earlier Job's slices count until this Job's pods have reused them.
    stored = done | parse_indexes(previous.completed_slices)
    counts = {"attempts": job.attempts, "slices": len(durations), "slices_done": len(stored),
              "completed_slices": format_indexes(stored) or None}  # fmt: skip
    if job.failed_for_good:
        return previous.model_copy(
            update={**counts, "phase": RenditionPhase.FAILED, "message": job.error}
        )
    if job.complete and len(done) == len(durations):
        result = measured_together(previous.name, results.values(), playlist_key)
        return previous.model_copy(update={**counts, **_measured(result)})
    started = job.waiting is None or bool(done)
    progress = rendition_progress(durations, stored, live_progress)
    return previous.model_copy(
        update={
            **counts,
            "phase": RenditionPhase.RUNNING if started else RenditionPhase.PENDING,
            "progress": max(previous.progress, progress),
            "message": job.waiting or None,
        }
    )


def _measured(result: RenditionResult | AudioRenditionResult) -> dict[str, Any]:
    """A succeeded rendition's fields, from what its worker (or its slices) measured."""
    picture = {}
    if isinstance(result, RenditionResult):
        picture = {"resolution": f"{result.width}x{result.height}", "frame_rate": result.frame_rate}
    return {
        "phase": RenditionPhase.SUCCEEDED,
        "progress": 100.0,
        "bandwidth": result.bandwidth,
        "average_bandwidth": result.average_bandwidth,
        **picture,
        "codecs": result.codecs,
        "playlist": result.playlist_key,
        "message": None,
    }


def _retried(rung: RenditionStatus, resource: str, token: str | None) -> RenditionStatus:
    """A failed or cancelled rung under a new retry token starts over in a new Job, which
    encodes only the slices not stored yet."""
    new_name = rendition_job_name(resource, rung.name, token)
    again = (RenditionPhase.FAILED, RenditionPhase.CANCELLED)
    if rung.phase not in again or rung.job_name == new_name:
        return rung
    return RenditionStatus(
        name=rung.name, job_name=new_name, attempts=rung.attempts, slices=rung.slices,
        slices_done=rung.slices_done, completed_slices=rung.completed_slices,
    )  # fmt: skip


def overall_progress(renditions: list[RenditionStatus], heights: Mapping[str, int]) -> float:
    """Mean rung progress weighted by pixels (height²), the rough cost of each rung."""
    weights = {r.name: heights.get(r.name, 1) ** 2 for r in renditions}
    total = sum(weights.values())
    if not total:
        return 0.0
    return round(sum(r.progress * weights[r.name] for r in renditions) / total, 1)


def _phase(renditions: list[RenditionStatus], packaged: bool) -> Phase:
    phases = {r.phase for r in renditions}
    if RenditionPhase.FAILED in phases:
        return Phase.FAILED
    if RenditionPhase.CANCELLED in phases:  # until a retry token runs them again
        return Phase.CANCELLED
    if phases == {RenditionPhase.SUCCEEDED}:
        return Phase.SUCCEEDED if packaged else Phase.PACKAGING
    if phases & {RenditionPhase.RUNNING, RenditionPhase.SUCCEEDED}:
        return Phase.TRANSCODING
    return Phase.QUEUED


def _conditions(new: VideoTranscodeStatus, now: str, previous: list[Condition]) -> list[Condition]:
    """Ready: the whole ladder is published. Playable: its start plays (from playableAt on,
    while the rest encodes), until the transcode fails or is cancelled."""
    playable = new.playable_at is not None and new.phase not in (Phase.FAILED, Phase.CANCELLED)
    ready = _condition("Ready", new.phase == Phase.SUCCEEDED, reason=new.phase.value,
                       message=new.message or "", now=now, previous=previous)  # fmt: skip
    reason = "Playable" if playable else new.phase.value
    return [ready, _condition("Playable", playable, reason=reason, message="", now=now,
                              previous=previous)]  # fmt: skip


def _condition(
    kind: str, true: bool, *, reason: str, message: str, now: str, previous: list[Condition]
) -> Condition:
    status = "True" if true else "False"
    old = next((c for c in previous if c.type == kind), None)
    since = old.last_transition_time if old and old.status == status else now
    return Condition(
        type=kind, status=status, reason=reason, message=message, last_transition_time=since
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
    # Sliced renditions: the results of their finished slices (read from S3), and the live
    # progress of their running slices, by rendition and slice index.
    slices: Mapping[str, Mapping[int, SliceResult]] = field(default_factory=dict)
    slice_progress: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    # Audio renditions: seconds of sound stored so far (their workers publish as they go).
    published: Mapping[str, float] = field(default_factory=dict)


def next_status(
    resource: Resource, observed: Observed, *, public_base_url: str | None,
    slicing: SlicingSettings = SlicingSettings(),  # noqa: B008 (immutable)
) -> Outcome:  # fmt: skip
    """The resource's next status and the effects it needs: create its probe Job, stop its
    Jobs, write its playlists. Rendition Jobs are started by the scheduler, not here.
    With the cancel annotation, whatever has not finished ends `Cancelled`."""
    outcome = _advance(resource, observed, slicing)
    now = observed.now
    if CANCEL_ANNOTATION in resource.annotations and outcome.status.phase not in _ENDED:
        cancel = cancelled(outcome.status, CANCELLED_BY_REQUEST)
        return _finish(cancel, resource.status, now, StopJobs())
    if outcome.status.phase == Phase.PACKAGING:
        return _packaged(outcome, resource.spec, observed, public_base_url)
    if outcome.status.phase == Phase.TRANSCODING and outcome.status.slice_seconds:
        return _growing(outcome, resource, observed, public_base_url)
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
    unpackaged: Outcome, spec: VideoTranscodeSpec, observed: Observed, public_base_url: str | None
) -> Outcome:
    """Every rung is done: Succeeded, once the media playlists stitched from slices (VOD now)
    and the master playlist listing every rendition are written."""
    status = unpackaged.status
    stitched = _stitched(status, observed.slices)
    if stitched is None:  # a slice's result could not be read yet: the engine tries again
        return unpackaged
    playback = playback_of(spec, public_base_url)
    succeeded = _finish(
        status.model_copy(update={
            "phase": Phase.SUCCEEDED, "progress": 100.0, "playback": playback,
            "playable_at": status.playable_at or observed.now,
        }),
        status,
        observed.now,
    )  # fmt: skip
    videos = [video_result(rung) for rung in status.renditions if not is_audio_rendition(rung.name)]
    master = build_master_playlist(videos, _audio_results(spec, status))
    write = WritePlaylists(
        bucket=spec.output.bucket,
        files=(*stitched, (playback.master_playlist, master)),
        fallback=status,
        fallback_events=unpackaged.events,
    )
    return Outcome(succeeded.status, unpackaged.events + succeeded.events, (write,))


def _audio_results(
    spec: VideoTranscodeSpec, status: VideoTranscodeStatus
) -> list[AudioRenditionResult]:
    by_name = {rung.name: rung for rung in status.renditions}
    if status.source is None:
        return []
    return [
        audio_result(plan, by_name[plan.name], spec.output.prefix)
        for plan in audio_plan(spec, status.source)
        if plan.name in by_name
    ]


def _sliced(status: VideoTranscodeStatus) -> list[RenditionStatus]:
    """The rungs encoded in time slices (audio never is)."""
    if not status.slice_seconds:
        return []
    return [rung for rung in status.renditions if not is_audio_rendition(rung.name)]


def _stitched(
    status: VideoTranscodeStatus, slices: Mapping[str, Mapping[int, SliceResult]]
) -> list[tuple[str, str]] | None:
    """Each sliced rung's media playlist, complete; None while a result is missing."""
    files = []
    for rung in _sliced(status):
        results = slices.get(rung.name, {})
        if rung.slices is None or len(finished_prefix(results.values())) < rung.slices:
            return None
        files.append((rung.playlist or "", stitch_media_playlist(results.values(), rung.slices)))
    return files


def _growing(
    outcome: Outcome, resource: Resource, observed: Observed, public_base_url: str | None
) -> Outcome:
    """Sliced renditions still encoding: once every rung's first slice and the start of every
    audio rendition are stored, publish the master and EVENT media playlists of the finished
    prefix (Playable), then extend each media playlist whenever more of its slices are
    stored. (Audio renditions publish their own growing playlists.)"""
    status, spec = outcome.status, resource.spec
    sliced = _sliced(status)
    prefixes = {
        rung.name: finished_prefix(observed.slices.get(rung.name, {}).values()) for rung in sliced
    }
    first_time = status.playable_at is None
    audio_started = all(
        rung.phase == RenditionPhase.SUCCEEDED or observed.published.get(rung.name, 0) > 0
        for rung in status.renditions
        if is_audio_rendition(rung.name)
    )
    if first_time and not (all(prefixes.values()) and audio_started):
        return outcome
    before = {rung.name: rung.slices_done for rung in resource.status.renditions}
    files = [
        (_media_key(spec, rung.name), stitch_media_playlist(prefixes[rung.name], rung.slices or 0))
        for rung in sliced
        if prefixes[rung.name] and (first_time or rung.slices_done != before.get(rung.name))
    ]
    if first_time:
        playback = playback_of(spec, public_base_url)
        variants = [
            measured_together(rung.name, prefixes[rung.name], _media_key(spec, rung.name))
            for rung in sliced
        ]
        master = build_master_playlist(variants, _audio_results(spec, status))
        files.append((playback.master_playlist, master))
        playable = status.model_copy(update={"playable_at": observed.now, "playback": playback})
        status = _finish(playable, resource.status, observed.now).status
    if not files:
        return outcome
    write = WritePlaylists(spec.output.bucket, tuple(files), resource.status, [])
    return Outcome(status, outcome.events, (*outcome.effects, write))


def _media_key(spec: VideoTranscodeSpec, rung: str) -> str:
    return f"{spec.output.prefix}/{media_playlist(rung)}"


def playlists_failed(status: VideoTranscodeStatus, error: str) -> VideoTranscodeStatus:
    """The status before the playlists, saying why they are not published yet."""
    return status.model_copy(update={"message": f"writing the playlists failed, retrying: {error}"})


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


def _advance(resource: Resource, observed: Observed, slicing: SlicingSettings) -> Outcome:
    name, spec, status = resource.name, resource.spec, resource.status
    jobs, now = observed.jobs, observed.now
    token = resource.annotations.get(RETRY_ANNOTATION)
    base: dict[str, Any] = {
        "observed_generation": resource.generation,
        "started_at": status.started_at or now,
    }
    if spec_changed(spec, status):
        return _as_started(spec, status, base, observed)
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
        slice_seconds = slice_seconds_for(spec, source, slicing)
        slices = None
        if slice_seconds:
            slices = len(slice_durations(source, slice_seconds, spec))
        # Audio first, as the master playlist lists it (the queue starts it after the video).
        renditions = [
            RenditionStatus(name=audio.name, job_name=rendition_job_name(name, audio.name, token))
            for audio in audio_plan(spec, source)
        ] + [
            RenditionStatus(
                name=rung.name,
                job_name=rendition_job_name(name, rung.name, token),
                slices=slices,
                slices_done=0 if slices else None,
            )
            for rung in choose_ladder(spec, source)
        ]
        status = status.model_copy(
            update={"source": source, "renditions": renditions, "slice_seconds": slice_seconds}
        )

    renditions = [
        _observed_rung(_retried(previous, name, token), spec, status, observed)
        for previous in status.renditions
    ]
    heights = {r.name: r.height for r in (spec.renditions or DEFAULT_LADDER)}
    phase = _phase(renditions, packaged=status.phase == Phase.SUCCEEDED)
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


def _observed_rung(
    rung: RenditionStatus, spec: VideoTranscodeSpec, status: VideoTranscodeStatus,
    observed: Observed,
) -> RenditionStatus:  # fmt: skip
    job = observed.jobs.get(rung.job_name or "")
    if not status.slice_seconds or status.source is None or is_audio_rendition(rung.name):
        return _rung_status(rung, job, observed.live_progress.get(rung.name))
    durations = slice_durations(status.source, status.slice_seconds, spec)
    return _sliced_rung_status(
        rung, job, results=observed.slices.get(rung.name, {}),
        live_progress=observed.slice_progress.get(rung.name, {}), durations=durations,
        playlist_key=_media_key(spec, rung.name),
    )  # fmt: skip


def _as_started(
    spec: VideoTranscodeSpec, status: VideoTranscodeStatus, base: dict[str, Any],
    observed: Observed,
) -> Outcome:  # fmt: skip
    """A changed spec: the Jobs already started are still rolled up, nothing new starts (no
    probe, no rung, no retry), and an unfinished transcode fails saying what to do."""
    renditions = [_observed_rung(rung, spec, status, observed) for rung in status.renditions]
    new = status.model_copy(
        update={
            **base,
            "phase": status.phase if status.phase.finished else Phase.FAILED,
            "renditions": renditions,
            "message": SPEC_CHANGED,
        }
    )
    return _finish(new, status, observed.now)


def _finish(
    new: VideoTranscodeStatus, old: VideoTranscodeStatus, now: str, *effects: Effect
) -> Outcome:
    completed = now if new.phase.finished and not old.phase.finished else None
    new = new.model_copy(
        update={
            "completed_at": (old.completed_at or completed) if new.phase.finished else None,
            "conditions": _conditions(new, now, old.conditions),
        }
    )
    message = f"{new.phase.value}: {new.message}" if new.message else new.phase.value
    events = [PhaseEvent(new.phase, message)] if new.phase != old.phase else []
    return Outcome(new, events, effects)
