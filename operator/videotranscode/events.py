"""The live events the operator sends through the API's Socket.IO relay to browsers and the CLI."""

from enum import StrEnum


class TranscodeEvent(StrEnum):
    PROGRESS = "transcode.progress"  # a rendition's worker reported progress
    PHASE = "transcode.phase"  # the transcode changed phase
    SUCCEEDED = "transcode.succeeded"
    FAILED = "transcode.failed"
    CANCELLED = "transcode.cancelled"
