"""The results of finished slices, read from S3 once each: what the operator stitches media
playlists from, without reading any media."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transcode_operator.observe import JobState, Key
from transcode_operator.outputs import read_slice_result
from videotranscode import (
    RenditionPhase,
    SliceResult,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
    slice_result,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Read:
    by_rendition: dict[str, dict[int, SliceResult]]
    complete: bool  # False: a result could not be read, a later pass should try again


@dataclass
class StoredSlices:
    s3: Any  # a boto3 S3 client
    # By (namespace, Job name): a retried rendition's new Job starts with nothing known.
    known: dict[Key, dict[int, SliceResult]] = field(default_factory=dict)

    async def read(
        self, namespace: str, spec: VideoTranscodeSpec, status: VideoTranscodeStatus,
        jobs: Mapping[str, JobState],
    ) -> Read:  # fmt: skip
        """The results of every finished slice of the resource's sliced renditions: those its
        Jobs report done, and all of a rendition already recorded as succeeded."""
        if not status.slice_seconds or status.phase.finished:
            return Read({}, complete=True)
        found: dict[str, dict[int, SliceResult]] = {}
        complete = True
        for rung in status.renditions:
            job_name = rung.job_name or ""
            job = jobs.get(job_name)
            if rung.phase == RenditionPhase.SUCCEEDED:
                wanted = set(range(rung.slices or 0))
            else:
                wanted = set(job.completed_indexes) if job else set()
            known = self.known.setdefault((namespace, job_name), {})
            for index in sorted(wanted - known.keys()):
                key = f"{spec.output.prefix}/{rung.name}/{slice_result(index)}"
                try:
                    known[index] = await asyncio.to_thread(
                        read_slice_result, self.s3, bucket=spec.output.bucket, key=key
                    )
                except Exception as exc:  # S3 errors come in many types; invalid JSON too
                    logger.warning("%s: reading %s failed: %s", namespace, key, exc)
                    complete = False
            found[rung.name] = {index: known[index] for index in wanted if index in known}
        return Read(found, complete)

    def forget(self, namespace: str, jobs: list[str]) -> None:
        for job in jobs:
            self.known.pop((namespace, job), None)
