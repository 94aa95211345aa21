"""The operator's state and its one reconcile path, shared by every handler.

One replica runs (the Deployment uses `Recreate`). Different resources reconcile
concurrently; one resource's triggers coalesce into at most one more pass while a pass runs.
One asyncio lock serialises scheduling, so the Job count the concurrency limit relies on stays
exact.
"""

import asyncio
import datetime
import json
import logging
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from transcode_operator import metrics
from transcode_operator.jobs import ROLE_RENDITION, build_probe_job, build_rendition_job
from transcode_operator.kube import Kube, describe_error
from transcode_operator.observe import job_states
from transcode_operator.publish import Realtime, VideoStore, video_update
from transcode_operator.reconcile import (
    CANCELLED_BY_DELETION,
    MASTER,
    RETRY_ANNOTATION,
    PhaseEvent,
    cancelled,
    parse_spec,
    probe_job_name,
    reconcile,
    rendition_to_result,
)
from transcode_operator.scheduling import WaitingRung, rungs_to_start
from transcode_operator.settings import OperatorSettings
from videotranscode import (
    DEFAULT_LADDER,
    Phase,
    Playback,
    RenditionPhase,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
    build_master_playlist,
)

logger = logging.getLogger(__name__)
RETRY_SECONDS = 10  # before writing a master playlist again after an S3 error

Key = tuple[str, str]  # (namespace, name)
JobsIndex = Mapping[Key, Iterable[Mapping[str, Any]]]  # by (namespace, resource)
PodsIndex = Mapping[Key, Iterable[Mapping[str, Any]]]  # by (namespace, job name)


def progress_event(line: str) -> dict[str, Any] | None:
    """A worker's JSON progress line; None for anything else (stderr, other events)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") == "progress" else None


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds_between(start: str, end: str) -> float:
    parse = datetime.datetime.fromisoformat
    return (parse(end) - parse(start)).total_seconds()


def owned(job: dict[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    kopf.adopt(job, owner=cast(kopf.Body, owner))
    return job


@dataclass
class Controller:
    settings: OperatorSettings
    kube: Kube
    s3: Any  # a boto3 S3 client
    videos: VideoStore | None = None
    realtime: Realtime | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # scheduling
    running: set[Key] = field(default_factory=set)  # resources with a pass under way
    dirty: set[Key] = field(default_factory=set)  # changed during their pass: one more
    queue: dict[Key, list[tuple[WaitingRung, dict[str, Any]]]] = field(default_factory=dict)
    just_created: set[Key] = field(default_factory=set)
    live_progress: dict[Key, dict[str, float]] = field(default_factory=dict)
    last_flush: dict[Key, float] = field(default_factory=dict)
    owners: dict[Key, dict[str, str]] = field(default_factory=dict)  # videoId/owner, for events
    gone: dict[Key, Mapping[str, Any]] = field(default_factory=dict)  # last body of the deleted
    # Log followers block for a pod's lifetime: their own threads keep the default executor
    # free for the API calls every reconcile makes.
    log_threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(thread_name_prefix="pod-logs")
    )
    tasks: dict[tuple[str, ...], asyncio.Task[None]] = field(default_factory=dict)

    async def reconcile(self, namespace: str, name: str, jobs: JobsIndex, pods: PodsIndex) -> None:
        """Bring one resource's status, probe Job and master playlist up to date.

        A pass reads everything afresh, so a trigger that arrives during one only asks for one
        more pass (however many arrive)."""
        key = (namespace, name)
        if key in self.running:
            self.dirty.add(key)
            return
        self.running.add(key)
        try:
            while True:
                self.dirty.discard(key)
                await self._reconcile(namespace, name, jobs, pods)
                async with self.lock:
                    await self._schedule(jobs)
                if key not in self.dirty:
                    return
        finally:
            self.running.discard(key)

    async def deleted(
        self, namespace: str, name: str, body: Mapping[str, Any], jobs: JobsIndex, pods: PodsIndex
    ) -> None:
        """The resource is gone. Told through a pass of its own, so this comes after the
        writes of any pass under way and the `videos` record cannot go back."""
        self.gone[(namespace, name)] = body
        await self.reconcile(namespace, name, jobs, pods)

    async def _reconcile(self, namespace: str, name: str, jobs: JobsIndex, pods: PodsIndex) -> None:
        key = (namespace, name)
        if (last := self.gone.pop(key, None)) is not None:
            await self._publish_deleted(last)
        body = await self.kube.get_transcode(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            for state in (self.queue, self.live_progress, self.last_flush, self.owners):
                state.pop(key, None)
            return
        status = VideoTranscodeStatus.model_validate(body.get("status") or {})
        try:
            spec = parse_spec(body.get("spec") or {})
        except ValueError as exc:
            failed = status.model_copy(update={
                "phase": Phase.FAILED, "message": str(exc),
                "completed_at": status.completed_at or now(),
            })  # fmt: skip
            await self._write(body, status, failed, [PhaseEvent(Phase.FAILED, f"Failed: {exc}")])
            raise kopf.PermanentError(str(exc)) from exc

        self.owners[key] = {k: v for k in ("videoId", "owner") if (v := body["spec"].get(k))}
        states = job_states(
            jobs.get(key, []),
            {job["name"]: pods.get((namespace, job["name"]), []) for job in jobs.get(key, [])},
        )
        annotations = body["metadata"].get("annotations") or {}
        outcome = reconcile(
            name=name, spec=spec, status=status, annotations=annotations, jobs=states,
            live_progress=self.live_progress.get(key, {}),
            generation=body["metadata"].get("generation"), now=now(),
        )  # fmt: skip
        if outcome.stop_jobs:
            await self._stop_jobs(namespace, jobs.get(key, []))
        if outcome.create_probe:
            probe = probe_job_name(name, annotations.get(RETRY_ANNOTATION))
            job = build_probe_job(name, spec, self.settings.job, name=probe)
            if await self.kube.create_job(namespace, owned(job, body)):
                metrics.JOBS_CREATED.labels("probe").inc()
        new, events = outcome.status, outcome.events
        if outcome.write_master:
            try:
                playback = await asyncio.to_thread(self._write_master, spec, new)
            except Exception as exc:  # S3 errors come in many types
                logger.warning("%s/%s: writing the master playlist failed: %s", *key, exc)
                message = f"writing the master playlist failed, retrying: {exc}"
                new = new.model_copy(update={"message": message})
                self._start(("retry", *key), self._reconcile_later(key, jobs, pods))
            else:
                packaged = new.model_copy(update={"playback": playback})
                final = reconcile(
                    name=name, spec=spec, status=packaged, annotations=annotations, jobs=states,
                    live_progress={}, generation=body["metadata"].get("generation"), now=now(),
                )  # fmt: skip
                new, events = final.status, events + final.events
        await self._write(body, status, new, events)
        self._queue_waiting(body, spec, new, states)

    async def cancel_vanished(self, namespaces: list[str]) -> int:
        """At start-up: videos under way whose resource was deleted while no operator ran
        (no DELETED event will come for them) become cancelled; returns how many."""
        assert self.videos is not None
        count = 0
        for video in await asyncio.to_thread(self.videos.unfinished, namespaces):
            where = video.transcode
            if where is None:  # every operator write sets it
                continue
            if await self.kube.get_transcode(where.namespace, where.name) is not None:
                continue
            status = video.status()
            body = {"metadata": {"namespace": where.namespace, "name": where.name},
                    "spec": {"videoId": video.id, "owner": video.owner}}  # fmt: skip
            await self._publish(body, status, cancelled(status, CANCELLED_BY_DELETION))
            count += 1
        return count

    async def _stop_jobs(self, namespace: str, jobs: Iterable[Mapping[str, Any]]) -> None:
        """Delete the Jobs that still run (their pods go too); finished ones stay until TTL."""
        for job in list(jobs):
            if not (job["complete"] or job["failedForGood"]):
                await self.kube.delete_job(namespace, job["name"])

    async def _publish_deleted(self, body: Mapping[str, Any]) -> None:
        status = VideoTranscodeStatus.model_validate(body.get("status") or {})
        if not status.phase.finished:
            await self._publish(body, status, cancelled(status, CANCELLED_BY_DELETION))

    def _queue_waiting(
        self, body: Mapping[str, Any], spec: VideoTranscodeSpec, status: VideoTranscodeStatus,
        states: Mapping[str, Any],
    ) -> None:  # fmt: skip
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        # A finished resource starts nothing more until retried; a probing one has no rung yet.
        if status.phase.finished or status.source is None:
            self.queue.pop(key, None)
            return
        rungs = {rung.name: rung for rung in spec.renditions or DEFAULT_LADDER}
        waiting = []
        for index, rendition in enumerate(status.renditions):
            job_name = rendition.job_name or ""
            if rendition.phase != RenditionPhase.PENDING or job_name in states:
                continue
            if (meta["namespace"], job_name) in self.just_created:
                continue
            entry = WaitingRung.of(
                namespace=meta["namespace"], resource=meta["name"], priority=spec.priority,
                created=meta.get("creationTimestamp") or "", index=index,
                rendition=rendition.name, job_name=job_name,
            )  # fmt: skip
            job = build_rendition_job(
                meta["name"], spec, rungs[rendition.name], self.settings.job, name=job_name,
                source=status.source,
            )  # fmt: skip
            waiting.append((entry, owned(job, body)))
        self.queue[key] = waiting

    async def _schedule(self, jobs: JobsIndex) -> None:
        """Start waiting rungs, in queue order, while fewer than the limit run."""
        indexed = {
            (namespace, job["name"]): job
            for (namespace, _), entries in jobs.items()
            for job in entries
            if job.get("role") == ROLE_RENDITION
        }
        self.just_created -= indexed.keys()
        running = len(self.just_created) + sum(
            1 for job in indexed.values() if not (job["complete"] or job["failedForGood"])
        )
        manifests = {entry: job for entries in self.queue.values() for entry, job in entries}
        for entry in rungs_to_start(manifests, running, self.settings.max_running_jobs):
            if await self.kube.create_job(entry.namespace, manifests[entry]):
                metrics.JOBS_CREATED.labels("rendition").inc()
            self.just_created.add((entry.namespace, entry.job_name))
            self.queue[(entry.namespace, entry.resource)] = [
                item for item in self.queue[(entry.namespace, entry.resource)] if item[0] != entry
            ]

    def _write_master(self, spec: VideoTranscodeSpec, status: VideoTranscodeStatus) -> Playback:
        results = [rendition_to_result(rung) for rung in status.renditions]
        key = f"{spec.output.prefix}/{MASTER}"
        self.s3.put_object(
            Bucket=spec.output.bucket,
            Key=key,
            Body=build_master_playlist(results).encode(),
            ContentType="application/vnd.apple.mpegurl",
            CacheControl="max-age=60",
        )
        base = self.settings.public_base_url
        return Playback(
            master_playlist=key,
            url=f"{base.rstrip('/')}/{key}" if base else None,
            thumbnail=f"{spec.output.prefix}/poster.jpg" if spec.thumbnail.enabled else None,
        )

    async def _write(
        self, body: Mapping[str, Any], old: VideoTranscodeStatus, new: VideoTranscodeStatus,
        events: list[PhaseEvent],
    ) -> None:  # fmt: skip
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if new == old:
            return
        await self.kube.patch_status(meta["namespace"], meta["name"], new)
        self.last_flush[key] = time.monotonic()
        for event in events:
            kind = "Warning" if event.phase == Phase.FAILED else "Normal"
            kopf.event(
                cast(kopf.Body, body), type=kind, reason=event.phase.value, message=event.message
            )
        if new.phase != old.phase:
            metrics.PHASE_CHANGES.labels(new.phase.value).inc()
            if new.phase == Phase.SUCCEEDED and new.started_at and new.completed_at:
                metrics.TRANSCODE_SECONDS.observe(
                    _seconds_between(new.started_at, new.completed_at)
                )
        await self._publish(body, old, new)

    async def _publish(
        self, body: Mapping[str, Any], old: VideoTranscodeStatus, new: VideoTranscodeStatus
    ) -> None:
        spec = body.get("spec") or {}
        video_id = spec.get("videoId")
        if not video_id:
            return
        meta = body["metadata"]
        dumped = new.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.videos is not None:
            query, update = video_update(
                namespace=meta["namespace"], name=meta["name"], status=dumped, seq=time.time_ns()
            )
            await self.videos.publish(video_id, query, update)
        if self.realtime is None:
            return
        payload = {"videoId": video_id, "owner": spec.get("owner"), "phase": dumped["phase"],
                   "progress": dumped["progress"], "renditions": dumped["renditions"]}  # fmt: skip
        if new.phase != old.phase:
            await self.realtime.emit("transcode.phase", payload)
        if new.phase == Phase.SUCCEEDED and old.phase != Phase.SUCCEEDED:
            await self.realtime.emit(
                "transcode.succeeded", {**payload, "playback": dumped.get("playback")}
            )
        if new.phase == Phase.FAILED and old.phase != Phase.FAILED:
            await self.realtime.emit("transcode.failed", {**payload, "message": new.message})
        if new.phase == Phase.CANCELLED and old.phase != Phase.CANCELLED:
            await self.realtime.emit("transcode.cancelled", {**payload, "message": new.message})

    async def progress(
        self, key: Key, event: Mapping[str, Any], *, jobs: JobsIndex, pods: PodsIndex
    ) -> None:
        """A worker's progress line: relay it now, fold it into the status every few seconds."""
        rendition, percent = str(event.get("rendition")), float(event.get("percent") or 0)
        rungs = self.live_progress.setdefault(key, {})
        rungs[rendition] = max(rungs.get(rendition, 0.0), percent)
        owner = self.owners.get(key, {})
        if self.realtime is not None and owner.get("videoId"):
            await self.realtime.emit("transcode.progress", {
                **owner, "rendition": rendition, "percent": rungs[rendition],
                "outTimeSeconds": event.get("outTimeSeconds"), "speed": event.get("speed"),
            })  # fmt: skip
        since = time.monotonic() - self.last_flush.get(key, 0.0)
        if since >= self.settings.status_interval_seconds:
            self.last_flush[key] = time.monotonic()
            await self.reconcile(*key, jobs, pods)

    def follow(self, namespace: str, pod: str, key: Key, jobs: JobsIndex, pods: PodsIndex) -> None:
        """Follow a running worker's log (once per pod) and roll its progress up."""
        self._start(("pod", namespace, pod), self._follow(namespace, pod, key, jobs, pods))

    async def _follow(
        self, namespace: str, pod: str, key: Key, jobs: JobsIndex, pods: PodsIndex
    ) -> None:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def read() -> None:
            try:
                for line in self.kube.follow_log(namespace, pod):
                    if (event := progress_event(line)) is not None:
                        loop.call_soon_threadsafe(events.put_nowait, event)
            finally:
                loop.call_soon_threadsafe(events.put_nowait, None)

        reader = loop.run_in_executor(self.log_threads, read)
        while (event := await events.get()) is not None:
            await self.progress(key, event, jobs=jobs, pods=pods)
        await reader

    async def _reconcile_later(self, key: Key, jobs: JobsIndex, pods: PodsIndex) -> None:
        await asyncio.sleep(RETRY_SECONDS)
        await self.reconcile(*key, jobs, pods)

    def _start(self, name: tuple[str, ...], work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background unless a task of that name still runs."""
        if name in self.tasks:
            work.close()
            return
        task = asyncio.create_task(work, name="/".join(name))
        task.add_done_callback(lambda done: self._task_done(name, done))
        self.tasks[name] = task

    def _task_done(self, name: tuple[str, ...], task: asyncio.Task[None]) -> None:
        self.tasks.pop(name, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.warning("%s failed: %s", task.get_name(), describe_error(exc))

    def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.log_threads.shutdown(wait=False, cancel_futures=True)

    def delete_outputs(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix/`; returns how many."""
        deleted = 0
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/"
        )
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted
