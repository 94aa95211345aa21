"""The VideoTranscode custom resource: spec and status, as on the wire (camelCase)."""

import hashlib
import json
from enum import StrEnum
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from videotranscode._model import CamelModel
from videotranscode.renditions import RenditionSpec
from videotranscode.results import SourceInfo
from videotranscode.slicing import AUTO, Slicing

# Annotations that ask the operator to act: a new retry value runs again what failed or was
# cancelled; the cancel annotation (any value) stops what has not finished.
RETRY_ANNOTATION = "hlsforge.dev/retry"
CANCEL_ANNOTATION = "hlsforge.dev/cancel"

# S3 bucket naming rules (3-63 lowercase letters, digits, dots and hyphens).
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
MAX_RENDITIONS = 10
MAX_SLICE_SECONDS = 3600
# What may change after creation (the CRD's transition rule allows these and nothing else):
# the queue order and width, and whether deleting the resource also deletes its outputs.
MUTABLE_SPEC_FIELDS = ("priority", "sliceParallelism", "output.cleanupOnDelete")
SPEC_IMMUTABLE = "spec is immutable: delete and create a new VideoTranscode"


class SourceSpec(CamelModel):
    """An uploaded object (`bucket` + `key`) or an http(s) `url`; exactly one of the two."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.url) != (has(self.bucket) || has(self.key))",
                    "message": "source needs either bucket and key, or url",
                },
                {
                    "rule": "has(self.bucket) == has(self.key)",
                    "message": "source needs both bucket and key",
                },
            ]
        }
    )

    bucket: str | None = Field(default=None, pattern=BUCKET_PATTERN)
    """S3 bucket holding the uploaded original: 3-63 lowercase letters, digits, dots and
    hyphens, starting and ending with a letter or digit. Needs key; excludes url."""
    key: str | None = Field(default=None, min_length=1, max_length=1024)
    """Object key of the uploaded original in bucket, 1-1024 characters, e.g.
    uploads/6650f0c2/original.mp4. Needs bucket."""
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2048)
    """http:// or https:// URL the worker downloads the original from (no whitespace, at most
    2048 characters). Excludes bucket and key."""

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
    """Where the HLS tree is written, s3://bucket/prefix/: master.m3u8, one folder per
    rendition (<name>/index.m3u8 and its segments) and poster.jpg."""

    bucket: str = Field(pattern=BUCKET_PATTERN)
    """S3 bucket for the HLS tree: 3-63 lowercase letters, digits, dots and hyphens, starting
    and ending with a letter or digit."""
    prefix: str = Field(min_length=1, max_length=512, pattern=r"^[^/].*[^/]$|^[^/]$")
    """Key prefix of the HLS tree without leading or trailing slash, 1-512 characters, e.g.
    videos/6650f0c2."""
    cleanup_on_delete: bool = False
    """Delete everything under prefix when this resource is deleted. Default false: the
    published HLS tree outlives the resource."""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class ThumbnailSpec(CamelModel):
    """The poster frame (poster.jpg next to master.m3u8)."""

    enabled: bool = True
    """Write the poster frame. Default true."""
    at_percent: float = Field(default=10, ge=0, le=100)
    """Where the poster is taken, in percent of the duration, 0-100. Default 10."""
    long_side: int = Field(default=640, ge=64, le=3840)
    """Poster size in pixels of its long side, 64-3840 (aspect ratio kept). Default 640."""


class VideoTranscodeSpec(CamelModel):
    """What to transcode, where to write the HLS tree and how to encode it."""

    # The CRD adds a transition rule that keeps all but MUTABLE_SPEC_FIELDS unchanged.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.segmentSeconds % self.gopSeconds == 0",
                    "message": "segmentSeconds must be a multiple of gopSeconds",
                },
                {
                    "rule": "type(self.slicing) != int || (self.slicing >= self.segmentSeconds"
                    f" && self.slicing <= {MAX_SLICE_SECONDS}"
                    " && self.slicing % self.segmentSeconds == 0)",
                    "message": "slicing in seconds must be a multiple of segmentSeconds, "
                    f"at most {MAX_SLICE_SECONDS}",
                },
            ]
        }
    )

    source: SourceSpec
    """The original video: an uploaded object (bucket and key) or an http(s) url, exactly one
    of the two."""
    output: OutputSpec
    renditions: list[RenditionSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RENDITIONS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    """The bitrate ladder, 1-10 rungs with unique names. Omitted: the default ladder, Apple's
    HLS authoring bitrates for H.264 16:9 with 128k AAC audio: 360p 365k, 540p 2000k, 720p
    3000k, 1080p 6000k. Rungs taller than the source's short side are skipped (never upscale);
    the lowest rung always remains."""
    segment_seconds: int = Field(default=6, ge=1, le=30)
    """Target HLS segment duration in seconds, 1-30, a multiple of gopSeconds. Default 6."""
    gop_seconds: int = Field(default=2, ge=1, le=10)
    """Keyframe interval in seconds, 1-10, the same in every rendition so that segments align
    for bitrate switching. Default 2."""
    segment_type: Literal["fmp4", "mpegts"] = "fmp4"
    """Segment container: fmp4 (fragmented MP4 / CMAF, the default) or mpegts (MPEG-2
    transport stream, for old players)."""
    slicing: Slicing = Field(
        default=AUTO,
        json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": "^(auto|off)$"},
    )
    """How renditions are split in time, each slice encoded by its own pod of the rendition's
    Indexed Job: auto (the default: sources longer than the operator's threshold, in slices of
    its length), off (one pod per rendition), or a slice length in seconds (a multiple of
    segmentSeconds, at most 3600). The first slice is one segment long, so the transcode is
    playable within seconds."""
    slice_parallelism: int | None = Field(default=None, ge=1, le=100)
    """At most this many slices of one rendition encode at once, 1-100 (below the operator's
    own limit). Omitted: the operator's limit alone. May change while the transcode runs."""
    thumbnail: ThumbnailSpec = ThumbnailSpec()
    priority: int = Field(default=0, ge=-1000, le=1000)
    """Scheduling priority, -1000 to 1000: when transcodes queue, higher runs first. Default
    0."""
    video_id: str | None = Field(default=None, max_length=128)
    """ID of the MongoDB videos document this transcode publishes to (at most 128 characters);
    the operator copies phase, progress and playback there."""
    owner: str | None = Field(default=None, max_length=128)
    """ID of the user who uploaded the video (at most 128 characters)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.segment_seconds % self.gop_seconds:
            raise ValueError("segmentSeconds must be a multiple of gopSeconds")
        if isinstance(self.slicing, int) and (
            not self.segment_seconds <= self.slicing <= MAX_SLICE_SECONDS
            or self.slicing % self.segment_seconds
        ):
            raise ValueError(
                "slicing in seconds must be a multiple of segmentSeconds, "
                f"at most {MAX_SLICE_SECONDS}"
            )
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
            exclude={"priority": True, "slice_parallelism": True,
                     "output": {"cleanup_on_delete"}},
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
    """The state of one rendition's Job."""

    name: str
    """The rung's name from spec.renditions (or the default ladder)."""
    phase: RenditionPhase = RenditionPhase.PENDING
    """Pending, Running, Succeeded, Failed or Cancelled."""
    progress: float = Field(default=0, ge=0, le=100)
    """Percent of this rendition encoded, 0-100."""
    job_name: str | None = None
    """The Job encoding this rendition."""
    attempts: int = 0
    """Jobs started for this rendition so far."""
    bandwidth: int | None = None
    """Measured peak segment bitrate in bits per second."""
    average_bandwidth: int | None = None
    """Measured average bitrate in bits per second."""
    resolution: str | None = None
    """Encoded picture size, WIDTHxHEIGHT, e.g. 1280x720."""
    frame_rate: float | None = None
    """Encoded frames per second, e.g. 29.97."""
    codecs: str | None = None
    """RFC 6381 codecs string, e.g. avc1.64001f,mp4a.40.2."""
    playlist: str | None = None
    """Object key of this rendition's media playlist."""
    slices: int | None = None
    """How many time slices this rendition is encoded in (absent: one pod encodes it)."""
    slices_done: int | None = None
    """Slices encoded and stored so far."""
    completed_slices: str | None = None
    """Which slices are stored, as Kubernetes writes an Indexed Job's completedIndexes
    (e.g. 0-3,5): a retry of the rendition encodes only the others."""
    message: str | None = None
    """Why the rendition failed or is being retried."""


class Playback(_StatusModel):
    """Where to play the result; set once the master playlist exists."""

    master_playlist: str
    """Object key of master.m3u8."""
    url: str | None = None
    """Public URL of master.m3u8, when a public base URL is set."""
    thumbnail: str | None = None
    """Object key or URL of the poster frame."""


class Condition(_StatusModel):
    """One observation of the resource's state."""

    type: str
    """Condition type, e.g. Ready."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = ""
    """CamelCase reason for the last transition."""
    message: str = ""
    """Human-readable details."""
    last_transition_time: str | None = None
    """When status last changed, RFC 3339 (e.g. 2024-05-01T12:00:00Z)."""


class VideoTranscodeStatus(_StatusModel):
    """Written by the operator only."""

    phase: Phase = Phase.PENDING
    """Pending, Probing, Queued, Transcoding, Packaging, then Succeeded, Failed or Cancelled
    (final)."""
    progress: float = Field(default=0, ge=0, le=100)
    """Percent done over all renditions, 0-100."""
    source: SourceInfo | None = None
    """What probing found in the original."""
    renditions: list[RenditionStatus] = Field(default_factory=list)
    """One entry per rendition being encoded (skipped rungs are absent)."""
    slice_seconds: int | None = None
    """The length of the time slices the renditions are encoded in, chosen once the source is
    probed (absent: one pod per rendition)."""
    renditions_summary: str | None = None  # kubectl's Renditions column
    """Renditions succeeded / renditions in the ladder, e.g. 3/4."""
    playback: Playback | None = None
    conditions: list[Condition] = Field(default_factory=list)
    """Kubernetes-style conditions (type, status, reason, message)."""
    started_at: str | None = None
    """When the first Job started, RFC 3339."""
    playable_at: str | None = None
    """When the master playlist was first published and the start could be played, RFC
    3339: as soon as the first slice of every rendition is stored, before the rest is."""
    completed_at: str | None = None
    """When the transcode reached a final phase, RFC 3339."""
    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    """The metadata.generation of the spec this status describes."""
    message: str | None = None
    """Human-readable explanation of the phase (errors in particular)."""
    spec_hash: str | None = None  # VideoTranscodeSpec.fingerprint() of the spec as started
    """Digest of the spec's immutable fields when the transcode started. Where the API server
    does not enforce immutability (no CEL), a spec that no longer matches it fails the
    transcode instead of mixing two specs."""
