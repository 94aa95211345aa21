"""The engine: one pass at a time per resource, and the background work passes start.

One replica runs (the Deployment uses `Recreate`). Different resources' passes run
concurrently; a pass reads everything afresh, so one resource's triggers during a pass only
ask for one more pass, however many arrive. A pass: read the resource, compute its next
status once (`next_status`), carry it out, then offer its waiting rungs to the queue.
"""

import asyncio
import datetime
import time
from collections.abc import Mapping
from typing import Any

import kopf

from transcode_operator.background import Background
from transcode_operator.execute import Executors, carry_out, write_status
from transcode_operator.followers import LogFollowers, ProgressLine
from transcode_operator.kube import Kube
from transcode_operator.observe import JobsIndex, Key, PodsIndex, job_states
from transcode_operator.publish import Publisher, owner_of
from transcode_operator.reconcile import (
    CANCELLED_BY_DELETION,
    Observed,
    Resource,
    cancelled,
    next_status,
    parse_spec,
    spec_rejected,
)
from transcode_operator.scheduling import Queue
from transcode_operator.settings import OperatorSettings
from transcode_operator.slices import SlicePlan, rendition_progress, slice_plans
from transcode_operator.stored_slices import StoredSlices
from videotranscode import VideoTranscodeStatus

RETRY_SECONDS = 10  # before a pass whose effect failed is tried again


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Engine:
    def __init__(
        self, *, settings: OperatorSettings, kube: Kube, s3: Any, publisher: Publisher | None = None
    ) -> None:
        self.settings = settings
        self.executors = Executors(kube, s3, publisher or Publisher(), settings.job)
        self.queue = Queue(kube, settings.job, settings.max_running_jobs,
                           slice_parallelism=settings.slicing.parallelism)  # fmt: skip
        self.stored_slices = StoredSlices(s3)
        self.background = Background()
        self.followers = LogFollowers(kube)
        self.running: set[Key] = set()  # resources with a pass under way
        self.dirty: set[Key] = set()  # triggered during their pass: one more
        self.gone: dict[Key, Mapping[str, Any]] = {}  # the last body of the deleted
        self.live_progress: dict[Key, dict[str, float]] = {}  # by rendition, from the logs
        self.slice_progress: dict[Key, dict[str, dict[int, float]]] = {}  # and by slice
        self.sliced: dict[Key, dict[str, SlicePlan]] = {}  # what relayed progress weighs
        self.published: dict[Key, dict[str, float]] = {}  # audio seconds stored, by rendition
        self.last_written: dict[Key, float] = {}  # monotonic time of the last status write
        self.owners: dict[Key, dict[str, str]] = {}  # videoId/owner, for progress events

    @property
    def kube(self) -> Kube:
        return self.executors.kube

    @property
    def publisher(self) -> Publisher:
        return self.executors.publisher

    async def reconcile(self, key: Key, jobs: JobsIndex, pods: PodsIndex) -> None:
        """Bring one resource's status, Jobs and outputs up to date, then start what the
        queue allows."""
        if key in self.running:
            self.dirty.add(key)
            return
        self.running.add(key)
        try:
            while True:
                self.dirty.discard(key)
                await self._pass(key, jobs, pods)
                await self.queue.start(jobs)
                if key not in self.dirty:
                    return
        finally:
            self.running.discard(key)

    async def deleted(
        self, key: Key, body: Mapping[str, Any], jobs: JobsIndex, pods: PodsIndex
    ) -> None:
        """The resource is gone. Told through a pass of its own, so this comes after the
        writes of any pass under way and the `videos` record cannot go back."""
        self.gone[key] = body
        await self.reconcile(key, jobs, pods)

    async def _pass(self, key: Key, jobs: JobsIndex, pods: PodsIndex) -> None:
        if (last := self.gone.pop(key, None)) is not None:
            await self._tell_deleted(last)
        body = await self.kube.get_transcode(*key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.queue.forget(key)
            for state in (self.live_progress, self.slice_progress, self.sliced,
                          self.published, self.last_written, self.owners):  # fmt: skip
                state.pop(key, None)
            self.stored_slices.forget(key[0], [job["name"] for job in jobs.get(key, [])])
            return
        status = VideoTranscodeStatus.model_validate(body.get("status") or {})
        try:
            spec = parse_spec(body.get("spec") or {})
        except ValueError as exc:
            rejected = spec_rejected(status, str(exc), now())
            await write_status(
                body, status, rejected.status, events=rejected.events, executors=self.executors,
                patched=lambda: self._written(key),
            )  # fmt: skip
            raise kopf.PermanentError(str(exc)) from exc
        self.owners[key] = owner_of(body["spec"])
        indexed = list(jobs.get(key, []))
        states = job_states(indexed, {job["name"]: pods.get((key[0], job["name"]), [])
                                      for job in indexed})  # fmt: skip
        meta = body["metadata"]
        slices = await self.stored_slices.read(key[0], spec, status, states)
        outcome = next_status(
            Resource(key[1], spec, status, meta.get("annotations") or {}, meta.get("generation")),
            Observed(states, self.live_progress.get(key, {}), now(), slices=slices.by_rendition,
                     slice_progress=self.slice_progress.get(key, {}),
                     published=self.published.get(key, {})),
            public_base_url=self.settings.public_base_url,
            slicing=self.settings.slicing,
        )  # fmt: skip
        done = await carry_out(
            outcome, body=body, spec=spec, old=status, jobs=indexed, executors=self.executors,
            patched=lambda: self._written(key),
        )  # fmt: skip
        if done.retry or not slices.complete:
            self.background.start(("retry", *key), self._reconcile_later(key, jobs, pods))
        self.queue.offer(body, spec, done.status, states)
        self.sliced[key] = slice_plans(done.status, spec)

    def _written(self, key: Key) -> None:
        self.last_written[key] = time.monotonic()

    async def _tell_deleted(self, body: Mapping[str, Any]) -> None:
        status = VideoTranscodeStatus.model_validate(body.get("status") or {})
        if not status.phase.finished:
            await self.publisher.status_changed(
                body, status, cancelled(status, CANCELLED_BY_DELETION)
            )

    async def _reconcile_later(self, key: Key, jobs: JobsIndex, pods: PodsIndex) -> None:
        await asyncio.sleep(RETRY_SECONDS)
        await self.reconcile(key, jobs, pods)

    def follow(
        self, namespace: str, pod: str, key: Key, jobs: JobsIndex, pods: PodsIndex, *,
        slice_index: int | None = None,
    ) -> None:  # fmt: skip
        """Follow a running worker's log (once per pod) and roll its progress up."""

        async def progress(line: ProgressLine) -> None:
            await self._progress(key, line, jobs, pods, slice_index=slice_index)

        self.background.start(
            ("pod", namespace, pod), self.followers.follow(namespace, pod, progress)
        )

    async def _progress(
        self, key: Key, line: ProgressLine, jobs: JobsIndex, pods: PodsIndex, *,
        slice_index: int | None,
    ) -> None:  # fmt: skip
        """A worker's progress line: relay it now, fold it into the status every few seconds.
        An audio rendition's first stored part may make the transcode playable: a pass now."""
        rendition = str(line.get("rendition"))
        if line.get("event") == "published":
            stored = self.published.setdefault(key, {})
            first = rendition not in stored
            stored[rendition] = max(stored.get(rendition, 0.0), float(line.get("seconds") or 0))
            if first:
                await self.reconcile(key, jobs, pods)
            return
        percent = float(line.get("percent") or 0)
        rungs = self.live_progress.setdefault(key, {})
        if slice_index is not None:
            slices = self.slice_progress.setdefault(key, {}).setdefault(rendition, {})
            slices[slice_index] = max(slices.get(slice_index, 0.0), percent)
            plan = self.sliced.get(key, {}).get(rendition, SlicePlan())
            percent = rendition_progress(plan.durations, plan.stored, slices)
        rungs[rendition] = max(rungs.get(rendition, 0.0), percent)
        await self.publisher.progress(self.owners.get(key, {}), rendition, rungs[rendition], line)
        since = time.monotonic() - self.last_written.get(key, 0.0)
        if since >= self.settings.status_interval_seconds:
            self._written(key)
            await self.reconcile(key, jobs, pods)

    def stop(self) -> None:
        self.background.stop()
        self.followers.close()
