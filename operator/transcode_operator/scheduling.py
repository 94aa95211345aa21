"""The cluster-wide queue: rungs waiting for a Job slot, in priority order, and starting them
while fewer than the limit run. One lock serialises starting, so the count stays exact."""

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transcode_operator import metrics
from transcode_operator.jobs import ROLE_RENDITION, build_rendition_job
from transcode_operator.kube import Kube, owned
from transcode_operator.observe import JobsIndex, JobState, Key
from transcode_operator.settings import JobSettings
from videotranscode import (
    DEFAULT_LADDER,
    RenditionPhase,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
)


@dataclass(frozen=True, order=True)
class WaitingRung:
    """A rung with no Job yet. Ordering: higher priority, then older resource, then ladder order."""

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


def rungs_to_start(waiting: Iterable[WaitingRung], running: int, limit: int) -> list[WaitingRung]:
    """The first `limit - running` rungs in queue order."""
    return sorted(waiting)[: max(0, limit - running)]


@dataclass
class Queue:
    kube: Kube
    job_settings: JobSettings
    limit: int
    waiting: dict[Key, list[tuple[WaitingRung, dict[str, Any]]]] = field(default_factory=dict)
    # Created, not yet in the index: they hold a slot, and are not queued again meanwhile.
    just_created: set[Key] = field(default_factory=set)
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
            self.waiting.pop(key, None)
            return
        rungs = {rung.name: rung for rung in spec.renditions or DEFAULT_LADDER}
        waiting = []
        for index, rendition in enumerate(status.renditions):
            job_name = rendition.job_name or ""
            if rendition.phase != RenditionPhase.PENDING or job_name in jobs:
                continue
            if (meta["namespace"], job_name) in self.just_created:
                continue
            entry = WaitingRung.of(
                namespace=meta["namespace"], resource=meta["name"], priority=spec.priority,
                created=meta.get("creationTimestamp") or "", index=index,
                rendition=rendition.name, job_name=job_name,
            )  # fmt: skip
            job = build_rendition_job(
                meta["name"], spec, rungs[rendition.name], self.job_settings, name=job_name,
                source=status.source,
            )  # fmt: skip
            waiting.append((entry, owned(job, body)))
        self.waiting[key] = waiting

    def forget(self, key: Key) -> None:
        self.waiting.pop(key, None)

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
            running = len(self.just_created) + sum(
                1 for job in indexed.values() if not (job["complete"] or job["failedForGood"])
            )
            manifests = {entry: job for entries in self.waiting.values() for entry, job in entries}
            for entry in rungs_to_start(manifests, running, self.limit):
                if await self.kube.create_job(entry.namespace, manifests[entry]):
                    metrics.JOBS_CREATED.labels("rendition").inc()
                self.just_created.add((entry.namespace, entry.job_name))
                key = (entry.namespace, entry.resource)
                self.waiting[key] = [item for item in self.waiting[key] if item[0] != entry]
