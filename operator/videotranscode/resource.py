"""The VideoTranscode custom resource: spec and status, as on the wire (camelCase)."""

import hashlib
import json
from enum import StrEnum
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from videotranscode._model import CamelModel
from videotranscode.renditions import RenditionSpec
from videotranscode.results import SourceInfo

# Annotations that ask the operator to act: a new retry value runs again what failed or was
# cancelled; the cancel annotation (any value) stops what has not finished.
RETRY_ANNOTATION = "hlsforge.dev/retry"
CANCEL_ANNOTATION = "hlsforge.dev/cancel"

# S3 bucket naming rules (3-63 lowercase letters, digits, dots and hyphens).
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
MAX_RENDITIONS = 10
# What may change after creation (the CRD's transition rule allows these and nothing else):
# the queue order, and whether deleting the resource also deletes its outputs.
MUTABLE_SPEC_FIELDS = ("priority", "output.cleanupOnDelete")
SPEC_IMMUTABLE = "spec is immutable: delete and create a new VideoTranscode"


class SourceSpec(CamelModel):
    """An uploaded object (`bucket` + `key`) or an http(s) `url`; exactly one of the two."""

    bucket: str | None = Field(default=None, pattern=BUCKET_PATTERN)
    key: str | None = Field(default=None, min_length=1, max_length=1024)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2048)

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        has_object = self.bucket is not None or self.key is not None
        if has_object == (self.url is not None):
            raise ValueError("source needs either bucket and key, or url")
        if has_object and not (self.bucket and self.key):
            raise ValueError("source needs both bucket and key")
        return self

    @property
    def location(self) -> str:
        """What the worker reads: `s3://bucket/key` or the URL."""
        return self.url or f"s3://{self.bucket}/{self.key}"


class OutputSpec(CamelModel):
    bucket: str = Field(pattern=BUCKET_PATTERN)
    prefix: str = Field(min_length=1, max_length=512, pattern=r"^[^/].*[^/]$|^[^/]$")
    cleanup_on_delete: bool = False

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class ThumbnailSpec(CamelModel):
    enabled: bool = True
    at_percent: float = Field(default=10, ge=0, le=100)
    long_side: int = Field(default=640, ge=64, le=3840)


class VideoTranscodeSpec(CamelModel):
    source: SourceSpec
    output: OutputSpec
    renditions: list[RenditionSpec] | None = Field(
        default=None, min_length=1, max_length=MAX_RENDITIONS
    )
    segment_seconds: int = Field(default=6, ge=1, le=30)
    gop_seconds: int = Field(default=2, ge=1, le=10)
    segment_type: Literal["fmp4", "mpegts"] = "fmp4"
    thumbnail: ThumbnailSpec = ThumbnailSpec()
    priority: int = Field(default=0, ge=-1000, le=1000)
    video_id: str | None = Field(default=None, max_length=128)
    owner: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.segment_seconds % self.gop_seconds:
            raise ValueError("segmentSeconds must be a multiple of gopSeconds")
        names = [rung.name for rung in self.renditions or []]
        if len(names) != len(set(names)):
            raise ValueError("rendition names must be unique")
        return self

    def fingerprint(self) -> str:
        """A digest of the fields that may not change once created (all but
        MUTABLE_SPEC_FIELDS). Rungs count in name order, as the API server compares a list
        keyed by name; fields at their default count as absent, so a newer model with more
        defaulted fields gives an existing resource the same digest."""
        immutable = self.model_dump(
            mode="json", by_alias=True, exclude_defaults=True,
            exclude={"priority": True, "output": {"cleanup_on_delete"}},
        )  # fmt: skip
        if "renditions" in immutable:
            immutable["renditions"].sort(key=lambda rung: rung["name"])
        text = json.dumps(immutable, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Phase(StrEnum):
    PENDING = "Pending"
    PROBING = "Probing"
    QUEUED = "Queued"
    TRANSCODING = "Transcoding"
    PACKAGING = "Packaging"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


class RenditionPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"  # stopped by a cancel; a retry runs it again


class _StatusModel(CamelModel):
    # Status is read back from the cluster: tolerate fields written by newer operators.
    model_config = ConfigDict(extra="ignore")


class RenditionStatus(_StatusModel):
    name: str
    phase: RenditionPhase = RenditionPhase.PENDING
    progress: float = Field(default=0, ge=0, le=100)
    job_name: str | None = None
    attempts: int = 0
    bandwidth: int | None = None
    average_bandwidth: int | None = None
    resolution: str | None = None
    frame_rate: float | None = None
    codecs: str | None = None
    playlist: str | None = None
    message: str | None = None


class Playback(_StatusModel):
    master_playlist: str
    url: str | None = None
    thumbnail: str | None = None


class Condition(_StatusModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class VideoTranscodeStatus(_StatusModel):
    phase: Phase = Phase.PENDING
    progress: float = Field(default=0, ge=0, le=100)
    source: SourceInfo | None = None
    renditions: list[RenditionStatus] = Field(default_factory=list)
    renditions_summary: str | None = None  # "ready/total": kubectl's Renditions column
    playback: Playback | None = None
    conditions: list[Condition] = Field(default_factory=list)
    started_at: str | None = None
    completed_at: str | None = None
    observed_generation: int | None = None
    message: str | None = None
    spec_hash: str | None = None  # VideoTranscodeSpec.fingerprint() of the spec as started
