"""Carrying out a pass: its effects first, then the status they allow, announced as
Kubernetes Events, metrics and to the rest of the product."""

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from transcode_operator import metrics
from transcode_operator.jobs import build_probe_job
from transcode_operator.kube import Kube, owned
from transcode_operator.outcomes import (
    CreateProbe,
    Outcome,
    PhaseEvent,
    StopJobs,
    WritePlaylists,
)
from transcode_operator.outputs import write_playlist
from transcode_operator.publish import Publisher
from transcode_operator.reconcile import playlists_failed
from transcode_operator.settings import JobSettings
from videotranscode import Phase, VideoTranscodeSpec, VideoTranscodeStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Executors:
    kube: Kube
    s3: Any  # a boto3 S3 client
    publisher: Publisher
    job_settings: JobSettings


@dataclass(frozen=True)
class Done:
    status: VideoTranscodeStatus  # as it stands now
    retry: bool  # an effect failed: a later pass should try again


async def carry_out(
    outcome: Outcome, *, body: Mapping[str, Any], spec: VideoTranscodeSpec,
    old: VideoTranscodeStatus, jobs: Iterable[Mapping[str, Any]], executors: Executors,
    patched: Callable[[], None],
) -> Done:  # fmt: skip
    """Perform `outcome`'s effects, then write the status they allow (`jobs`: the index's;
    `patched` is called as soon as the status is written, before it is announced)."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    status, events, retry = outcome.status, outcome.events, False
    for effect in outcome.effects:
        match effect:
            case StopJobs():
                await stop_jobs(executors.kube, namespace, jobs)
            case CreateProbe(job_name=probe):
                job = build_probe_job(name, spec, executors.job_settings, name=probe)
                if await executors.kube.create_job(namespace, owned(job, body)):
                    metrics.JOBS_CREATED.labels("probe").inc()
            case WritePlaylists():
                try:
                    for key, playlist in effect.files:
                        await asyncio.to_thread(
                            write_playlist, executors.s3, bucket=effect.bucket, key=key,
                            playlist=playlist,
                        )  # fmt: skip
                except Exception as exc:  # S3 errors come in many types
                    logger.warning("%s/%s: writing the playlists failed: %s", namespace, name,
                                   exc)  # fmt: skip
                    status = playlists_failed(effect.fallback, str(exc))
                    events, retry = effect.fallback_events, True
    await write_status(body, old, status, events=events, executors=executors, patched=patched)
    return Done(status, retry)


async def stop_jobs(kube: Kube, namespace: str, jobs: Iterable[Mapping[str, Any]]) -> None:
    """Delete the Jobs that still run (their pods go too); finished ones stay until TTL."""
    for job in list(jobs):
        if not (job["complete"] or job["failedForGood"]):
            await kube.delete_job(namespace, job["name"])


async def write_status(
    body: Mapping[str, Any], old: VideoTranscodeStatus, new: VideoTranscodeStatus, *,
    events: list[PhaseEvent], executors: Executors, patched: Callable[[], None],
) -> None:  # fmt: skip
    """Write `new` unless it is `old`, and announce it."""
    if new == old:
        return
    meta = body["metadata"]
    await executors.kube.patch_status(meta["namespace"], meta["name"], new)
    patched()
    for event in events:
        kind = "Warning" if event.phase == Phase.FAILED else "Normal"
        kopf.event(
            cast(kopf.Body, body), type=kind, reason=event.phase.value, message=event.message
        )
    if new.phase != old.phase:
        metrics.PHASE_CHANGES.labels(new.phase.value).inc()
        if new.phase == Phase.SUCCEEDED and new.started_at and new.completed_at:
            metrics.TRANSCODE_SECONDS.observe(_seconds_between(new.started_at, new.completed_at))
    await executors.publisher.status_changed(body, old, new)


def _seconds_between(start: str, end: str) -> float:
    parse = datetime.datetime.fromisoformat
    return (parse(end) - parse(start)).total_seconds()
