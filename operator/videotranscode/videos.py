"""The `videos` read model in MongoDB: the API creates each record, the operator writes its
transcode fields, and clients read it through the API.

A record is read back from documents written by any earlier version: newer fields have
defaults and unknown ones are ignored. Field names are camelCase as stored, `_id` is `id`.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from videotranscode._model import CamelModel
from videotranscode.resource import (
    OutputSpec,
    Phase,
    Playback,
    RenditionStatus,
    VideoTranscodeStatus,
)


class VideoPhase(StrEnum):
    """`awaiting_upload` and the first `queued` are the API's; the rest mirror the resource's
    phase, lower-cased."""

    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    PENDING = "pending"
    PROBING = "probing"
    TRANSCODING = "transcoding"
    PACKAGING = "packaging"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def of(cls, phase: Phase) -> "VideoPhase":
        """The video phase that mirrors a resource phase."""
        return cls(phase.value.lower())

    @property
    def finished(self) -> bool:
        return self in (VideoPhase.SUCCEEDED, VideoPhase.FAILED, VideoPhase.CANCELLED)

    def playable(self, playable_at: str | None) -> bool:
        """Whether a video in this phase plays: once succeeded, or from `playable_at` on
        while the rest still encodes."""
        return self == VideoPhase.SUCCEEDED or (playable_at is not None and not self.ended)

    @property
    def ended(self) -> bool:
        """Finished without a result, for a reason (the record's `error`): a retry may run it
        again."""
        return self in (VideoPhase.FAILED, VideoPhase.CANCELLED)

    @property
    def resource_phase(self) -> Phase:
        """The resource phase this one mirrors; ValueError for `awaiting_upload`."""
        return Phase(self.value.capitalize())


class Visibility(StrEnum):
    PRIVATE = "private"  # the owner only
    UNLISTED = "unlisted"  # anyone with the id, never listed
    PUBLIC = "public"  # listed at /public/videos once it has succeeded


class _Stored(CamelModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """Earlier versions stored some fields as null (and a PATCH could): null means the
        default, as absent does."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class TranscodeRef(_Stored):
    """The `VideoTranscode` of a video."""

    namespace: str
    name: str


class StoredObject(_Stored):
    bucket: str
    key: str


class PostUploadState(_Stored):
    """A single browser form POST to S3."""

    method: Literal["post"] = "post"


class MultipartUploadState(_Stored):
    """An S3 multipart upload; `completed` once S3 has assembled its parts."""

    method: Literal["multipart"] = "multipart"
    upload_id: str
    part_size: int
    completed: bool = False


UploadState = Annotated[PostUploadState | MultipartUploadState, Field(discriminator="method")]


class TranscodeFields(_Stored):
    """What the operator writes to a video from its resource's status (the API writes their
    first values). `transcodeSeq` orders the operator's writes; the API never sets it."""

    phase: VideoPhase
    progress: float = 0
    renditions: list[RenditionStatus] = Field(default_factory=list)
    playback: Playback | None = None
    # Set once the start can be played (playback is then set too, before `succeeded`).
    playable_at: str | None = None
    error: str | None = None
    transcode: TranscodeRef | None = None
    transcode_seq: int | None = None
    updated_at: datetime | None = None

    def status(self) -> VideoTranscodeStatus:
        """The part of the resource's status this video keeps (an operator's phase only)."""
        return VideoTranscodeStatus(
            phase=self.phase.resource_phase, progress=self.progress, renditions=self.renditions
        )


class TranscodedVideo(TranscodeFields):
    """A video as the operator reads it back: whose it is and its transcode fields."""

    id: str = Field(alias="_id")
    owner: str | None = None


class VideoRecord(TranscodedVideo):
    """A `videos` document."""

    owner: str
    title: str
    description: str = ""
    visibility: Visibility = Visibility.PRIVATE
    filename: str
    content_type: str
    size: int
    source: StoredObject
    upload: UploadState | None = None
    # One of its owner's places for a video awaiting its upload (the repository's unique index).
    upload_slot: int | None = None
    output: OutputSpec | None = None  # set when the transcode is queued
    created_at: datetime
    updated_at: datetime

    def document(self) -> dict[str, Any]:
        """The document MongoDB stores. None is left out, not stored as null: the
        repository's queries and its partial index test fields with `$exists`."""
        return self.model_dump(by_alias=True, exclude_none=True)


def transcode_fields(
    status: VideoTranscodeStatus, *, namespace: str, name: str, seq: int, now: datetime
) -> TranscodeFields:
    """The fields of a video that follow its resource's `status`."""
    return TranscodeFields(
        phase=VideoPhase.of(status.phase),
        progress=status.progress,
        renditions=status.renditions,
        playback=status.playback,
        playable_at=status.playable_at,
        error=status.message if VideoPhase.of(status.phase).ended else None,
        transcode=TranscodeRef(namespace=namespace, name=name),
        transcode_seq=seq,
        updated_at=now,
    )


def stored_fields(fields: TranscodeFields) -> dict[str, Any]:
    """`fields` as a `$set`: every one of them, a None too, so an old `error` or `playback`
    is cleared."""
    names = TranscodeFields.model_fields
    cleared = {field.alias or name: None for name, field in names.items()}
    return cleared | fields.model_dump(by_alias=True, exclude_none=True, include=set(names))
