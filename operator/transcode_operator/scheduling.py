"""The cluster-wide queue: rungs waiting for a Job, in priority order, started while fewer
worker pods than the limit run. A sliced rung's Indexed Job starts one pod wide, so the first
slices of every waiting rung go first; pods left over then widen the running sliced Jobs,
one more pod each per round, in queue order. One lock serialises starting, so the count
stays exact."""

import asyncio
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transcode_operator import metrics
from transcode_operator.jobs import (
    ROLE_RENDITION,
    Slicing,
    build_audio_job,
    build_rendition_job,
)
from transcode_operator.kube import Kube, owned
from transcode_operator.ladder import audio_plan
from transcode_operator.observe import JobsIndex, JobState, Key
from transcode_operator.settings import JobSettings
from videotranscode import (
    DEFAULT_LADDER,
    RenditionPhase,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
)
from videotranscode.slicing import parse_indexes


@dataclass(frozen=True, order=True)
class WaitingRung:
    """A rung with no Job yet. Ordering: higher priority, then older resource, then ladder
    order (video rungs, then audio)."""

    sort_key: tuple[int, str, str, str, int]
    namespace: str
    resource: str
    rendition: str
    job_name: str

    @classmethod
    def of(
        cls, *, namespace: str, resource: str, priority: int, created: str, index: int,
        rendition: str, job_name: str,
    ) -> "WaitingRung":  # fmt: skip
        return cls((-priority, created, namespace, resource, index), namespace, resource,
                   rendition, job_name)  # fmt: skip


def rungs_to_start(
    waiting: Iterable[WaitingRung], running: int, limit: int,
    together: Collection[Key] = frozenset(),
) -> list[WaitingRung]:  # fmt: skip
    """The first `limit - running` rungs in queue order. A rung of a resource in `together`
    brings its resource's other waiting rungs along, beyond the limit if need be: a sliced
    rung's Job keeps its pod for its next slice, so a rung left behind would wait for a whole
    rung to finish, and the transcode's first playable moment with it. The cluster runs what
    it has room for, oldest pods first."""
    queued = sorted(waiting)
    chosen = queued[: max(0, limit - running)]
    along = {(e.namespace, e.resource) for e in chosen} & set(together)
    return sorted({*chosen, *(e for e in queued if (e.namespace, e.resource) in along)})


@dataclass(frozen=True)
class Widening:
    """A running sliced Job: how wide it is and how wide it may become."""

    job: Key
    sort_key: tuple[int, str, str, str, int]
    parallelism: int
    remaining: int  # slices not yet done
    cap: int  # the operator's and the spec's limit

    @property
    def pods(self) -> int:
        """Pods it runs (or will): never more than its slices left."""
        return min(self.parallelism, self.remaining)

    @property
    def most(self) -> int:
        return min(self.cap, self.remaining)


def widths(jobs: Iterable[Widening], free: int) -> dict[Key, int]:
    """New parallelism for sliced Jobs, sharing `free` pods one per Job per round in queue
    order (breadth first, so every rendition's playable prefix grows together). Only ever
    wider: a narrower Job would stop slices mid-way."""
    ordered = sorted(jobs, key=lambda job: job.sort_key)
    width = {job.job: max(job.parallelism, job.pods) for job in ordered}
    grown = True
    while free > 0 and grown:
        grown = False
        for job in ordered:
            if free > 0 and width[job.job] < job.most:
                width[job.job] += 1
                free -= 1
                grown = True
    return {job.job: width[job.job] for job in ordered if width[job.job] > job.parallelism}


@dataclass
class Queue:
    kube: Kube
    job_settings: JobSettings
    limit: int
    slice_parallelism: int = 1  # the operator's limit per sliced Job
    waiting: dict[Key, list[tuple[WaitingRung, dict[str, Any]]]] = field(default_factory=dict)
    # Created, not yet in the index: they hold a slot, and are not queued again meanwhile.
    just_created: set[Key] = field(default_factory=set)
    # Sliced Jobs that may widen: their queue place and cap, by (namespace, Job name).
    sliced: dict[Key, tuple[tuple[int, str, str, str, int], int]] = field(default_factory=dict)
    sliced_resources: set[Key] = field(default_factory=set)  # (namespace, resource)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def offer(
        self, body: Mapping[str, Any], spec: VideoTranscodeSpec, status: VideoTranscodeStatus,
        jobs: Mapping[str, JobState],
    ) -> None:  # fmt: skip
        """Queue the resource's rungs that have no Job yet (replacing what it had queued)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        # A finished resource starts nothing more until retried; a probing one has no rung yet.
        if status.phase.finished or status.source is None:
            self.forget(key)
            return
        if status.slice_seconds:
            self.sliced_resources.add(key)
        rungs = {rung.name: rung for rung in spec.renditions or DEFAULT_LADDER}
        audio = {plan.name: plan for plan in audio_plan(spec, status.source)}
        cap = min(self.slice_parallelism, spec.slice_parallelism or self.slice_parallelism)
        waiting = []
        for index, rendition in enumerate(status.renditions):
            job_name = rendition.job_name or ""
            # The video rungs' (first slices') pods before the audio's: an audio pod encodes
            # the whole source, holding its slot all along, and stores its first segments
            # within seconds of starting wherever it comes.
            place = index + len(status.renditions) if rendition.name in audio else index
            entry = WaitingRung.of(
                namespace=meta["namespace"], resource=meta["name"], priority=spec.priority,
                created=meta.get("creationTimestamp") or "", index=place,
                rendition=rendition.name, job_name=job_name,
            )  # fmt: skip
            if status.slice_seconds and rendition.slices:
                self.sliced[(meta["namespace"], job_name)] = (entry.sort_key, cap)
            if rendition.phase != RenditionPhase.PENDING or job_name in jobs:
                continue
            if (meta["namespace"], job_name) in self.just_created:
                continue
            if rendition.name in audio:
                job = build_audio_job(
                    meta["name"], spec, audio[rendition.name], self.job_settings,
                    name=job_name, source=status.source,
                )  # fmt: skip
            else:
                slicing = None
                if status.slice_seconds and rendition.slices:
                    done = parse_indexes(rendition.completed_slices)
                    slicing = Slicing(status.slice_seconds, rendition.slices, 1, done)
                job = build_rendition_job(
                    meta["name"], spec, rungs[rendition.name], self.job_settings,
                    name=job_name, source=status.source, slicing=slicing,
                )  # fmt: skip
            waiting.append((entry, owned(job, body)))
        self.waiting[key] = waiting

    def forget(self, key: Key) -> None:
        self.waiting.pop(key, None)
        self.sliced_resources.discard(key)

    async def start(self, jobs: JobsIndex) -> None:
        """Start waiting rungs, in queue order, while fewer than the limit run."""
        async with self.lock:
            indexed = {
                (namespace, job["name"]): job
                for (namespace, _), entries in jobs.items()
                for job in entries
                if job.get("role") == ROLE_RENDITION
            }
            self.just_created -= indexed.keys()
            running = {
                key: job for key, job in indexed.items()
                if not (job["complete"] or job["failedForGood"])
            }  # fmt: skip
            self.sliced = {key: value for key, value in self.sliced.items()
                           if key in running or key in self.just_created}  # fmt: skip
            wide = [self._widening(key, job) for key, job in running.items() if key in self.sliced]
            pods = len(self.just_created) + sum(
                1 for key in running if key not in self.sliced
            ) + sum(job.pods for job in wide)  # fmt: skip
            manifests = {entry: job for entries in self.waiting.values() for entry, job in entries}
            together = self.sliced_resources & self.waiting.keys()
            for entry in rungs_to_start(manifests, pods, self.limit, together):
                if await self.kube.create_job(entry.namespace, manifests[entry]):
                    metrics.JOBS_CREATED.labels("rendition").inc()
                self.just_created.add((entry.namespace, entry.job_name))
                key = (entry.namespace, entry.resource)
                self.waiting[key] = [item for item in self.waiting[key] if item[0] != entry]
                pods += 1
            for (namespace, name), parallelism in widths(wide, self.limit - pods).items():
                await self.kube.widen_job(namespace, name, parallelism)

    def _widening(self, key: Key, job: Mapping[str, Any]) -> Widening:
        sort_key, cap = self.sliced[key]
        remaining = job["completions"] - len(job["completedIndexes"])
        return Widening(key, sort_key, job["parallelism"], remaining, cap)
