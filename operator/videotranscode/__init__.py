"""The VideoTranscode contract shared by the API, the operator and the worker.

Imports pydantic only, so every deployable (and the transcoder image) can depend on it.
"""

from videotranscode.hls import (
    build_master_playlist,
    default_variant_index,
    target_duration,
    target_duration_errors,
)
from videotranscode.renditions import (
    DEFAULT_LADDER,
    RenditionSpec,
    parse_bitrate,
    select_ladder,
)
from videotranscode.resource import (
    CANCEL_ANNOTATION,
    MUTABLE_SPEC_FIELDS,
    RETRY_ANNOTATION,
    SPEC_IMMUTABLE,
    Condition,
    OutputSpec,
    Phase,
    Playback,
    RenditionPhase,
    RenditionStatus,
    SourceSpec,
    ThumbnailSpec,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
)
from videotranscode.results import (
    AudioStreamInfo,
    RenditionResult,
    SourceInfo,
    VideoStreamInfo,
)

GROUP = "hlsforge.dev"
VERSION = "v1alpha1"
PLURAL = "videotranscodes"
KIND = "VideoTranscode"

__all__ = [
    "CANCEL_ANNOTATION",
    "DEFAULT_LADDER",
    "GROUP",
    "KIND",
    "MUTABLE_SPEC_FIELDS",
    "PLURAL",
    "RETRY_ANNOTATION",
    "SPEC_IMMUTABLE",
    "VERSION",
    "AudioStreamInfo",
    "Condition",
    "OutputSpec",
    "Phase",
    "Playback",
    "RenditionPhase",
    "RenditionResult",
    "RenditionSpec",
    "RenditionStatus",
    "SourceInfo",
    "SourceSpec",
    "ThumbnailSpec",
    "VideoStreamInfo",
    "VideoTranscodeSpec",
    "VideoTranscodeStatus",
    "build_master_playlist",
    "default_variant_index",
    "parse_bitrate",
    "select_ladder",
    "target_duration",
    "target_duration_errors",
]
