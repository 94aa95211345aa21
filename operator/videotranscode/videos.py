"""The `videos` read model in MongoDB: the API creates each record, the operator writes its
transcode fields, and clients read it through the API."""

from enum import StrEnum


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

    @property
    def finished(self) -> bool:
        return self in (VideoPhase.SUCCEEDED, VideoPhase.FAILED, VideoPhase.CANCELLED)
