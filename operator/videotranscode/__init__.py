"""The VideoTranscode contract shared by the API, the operator and the worker.

Imports pydantic only, so every deployable (and the transcoder image) can depend on it.
"""

from videotranscode.events import (
    ENDING_EVENTS,
    PAYLOADS,
    EndedPayload,
    EventPayload,
    PhasePayload,
    ProgressPayload,
    SucceededPayload,
    TranscodeEvent,
    parse_payload,
)
from videotranscode.hls import (
    build_master_playlist,
    default_variant_index,
    target_duration,
    target_duration_errors,
)
from videotranscode.layout import (
    HLS_PLAYLIST_TYPE,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    OUTPUT_CONTENT_TYPES,
    POSTER,
    SOURCE_CONTENT_TYPES,
    media_playlist,
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
from videotranscode.videos import (
    MultipartUploadState,
    PostUploadState,
    StoredObject,
    TranscodedVideo,
    TranscodeFields,
    TranscodeRef,
    VideoPhase,
    VideoRecord,
    Visibility,
    stored_fields,
    transcode_fields,
)
from videotranscode.worker import PosterArgs, ProbeArgs, RenditionArgs

GROUP = "hlsforge.dev"
VERSION = "v1alpha1"
PLURAL = "videotranscodes"
KIND = "VideoTranscode"

__all__ = [
    "CANCEL_ANNOTATION",
    "DEFAULT_LADDER",
    "ENDING_EVENTS",
    "GROUP",
    "HLS_PLAYLIST_TYPE",
    "KIND",
    "MASTER_PLAYLIST",
    "MEDIA_PLAYLIST",
    "MUTABLE_SPEC_FIELDS",
    "OUTPUT_CONTENT_TYPES",
    "PAYLOADS",
    "PLURAL",
    "POSTER",
    "RETRY_ANNOTATION",
    "SOURCE_CONTENT_TYPES",
    "SPEC_IMMUTABLE",
    "VERSION",
    "AudioStreamInfo",
    "Condition",
    "EndedPayload",
    "EventPayload",
    "MultipartUploadState",
    "OutputSpec",
    "Phase",
    "PhasePayload",
    "Playback",
    "PostUploadState",
    "PosterArgs",
    "ProbeArgs",
    "ProgressPayload",
    "RenditionArgs",
    "RenditionPhase",
    "RenditionResult",
    "RenditionSpec",
    "RenditionStatus",
    "SourceInfo",
    "SourceSpec",
    "StoredObject",
    "SucceededPayload",
    "ThumbnailSpec",
    "TranscodeEvent",
    "TranscodeFields",
    "TranscodeRef",
    "TranscodedVideo",
    "VideoPhase",
    "VideoRecord",
    "VideoStreamInfo",
    "VideoTranscodeSpec",
    "VideoTranscodeStatus",
    "Visibility",
    "build_master_playlist",
    "default_variant_index",
    "media_playlist",
    "parse_bitrate",
    "parse_payload",
    "select_ladder",
    "stored_fields",
    "target_duration",
    "target_duration_errors",
    "transcode_fields",
]
