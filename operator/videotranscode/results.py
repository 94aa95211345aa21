"""What the worker reports (termination message) and the operator records in the status."""

from typing import Literal

from pydantic import ConfigDict, Field

from videotranscode._model import CamelModel
from videotranscode.layout import media_playlist


class _Reported(CamelModel):
    # Written by the worker, read by the operator: an older reader ignores newer fields.
    model_config = ConfigDict(extra="ignore")


class VideoStreamInfo(_Reported):
    """The video stream."""

    codec: str
    """Codec name, e.g. h264, hevc, vp9."""
    width: int
    """Width in pixels as displayed (after rotation and pixel aspect ratio)."""
    height: int
    """Height in pixels as displayed."""
    fps: float
    """Frames per second, e.g. 29.97."""
    frame_rate: str
    """Exact frame rate as a rational, e.g. 30000/1001."""
    pixel_format: str
    """Pixel format, e.g. yuv420p."""
    rotation: int
    """Display-matrix rotation in degrees counter-clockwise: 0, 90, 180 or 270."""
    interlaced: bool = False  # older results lack it
    """The pictures are interlaced (fields): the renditions are deinterlaced to one progressive
    frame per source frame."""
    field_first: Literal["auto", "tff", "bff"] | None = None  # older results lack it
    """Interlaced pictures only: which field is earlier in time, as `idet` measured it (tff,
    bff), or auto: each decoded frame's own flag (the stream declares it interlaced)."""
    stream_index: int | None = None  # older results lack it
    """The stream's index among all the original's streams (FFmpeg's `0:N`)."""


class AudioStreamInfo(_Reported):
    """The audio stream; absent when the original has none."""

    codec: str
    """Codec name, e.g. aac, opus."""
    channels: int
    """Number of channels."""
    sample_rate: int
    """Sample rate in Hz, e.g. 48000."""


class AudioTrackInfo(_Reported):
    """One audio stream of the original; each becomes an audio-only rendition."""

    index: int
    """Position among the original's audio streams, from 0 (FFmpeg's a:N)."""
    codec: str
    """Codec name, e.g. aac, opus."""
    channels: int
    """Number of channels."""
    sample_rate: int
    """Sample rate in Hz, e.g. 48000."""
    language: str | None = None
    """BCP 47 language tag from the stream's tags, lowercase (e.g. en, de); none when absent
    or undetermined."""
    title: str | None = None
    """The stream's title tag, e.g. Director's commentary."""
    default: bool = False
    """The original marks the stream as default (its disposition)."""
    stream_index: int | None = None  # older results lack it
    """The stream's index among all the original's streams (FFmpeg's `0:N`)."""


class SourceInfo(_Reported):
    """What probing found in the original."""

    duration_seconds: float
    """Duration in seconds."""
    container: str
    """Container format as FFmpeg names it, e.g. mov,mp4,m4a,3gp."""
    size_bytes: int = Field(json_schema_extra={"format": "int64"})
    """Size of the original in bytes."""
    video: VideoStreamInfo
    audio: AudioStreamInfo | None = None
    """The first audio stream; absent when the original has none."""
    audio_streams: list[AudioTrackInfo] = Field(default_factory=list)  # older results lack it
    """Every audio stream, in order; empty when the original is silent."""
    start_seconds: float | None = None  # older results lack it
    """The container's first timestamp in seconds (MPEG-TS rarely starts at 0)."""
    video_shortfall_seconds: float | None = None  # older results lack it
    """How long before the end the pictures stop (the sound outlasts them): the renditions
    hold the last picture that long."""

    def has_encoding_facts(self) -> bool:
        """Everything a rendition needs to know of the original is here (a result of a probe
        that reports it), so a rendition's pod need not probe the original again."""
        video = self.video
        return (
            video.stream_index is not None
            and (video.field_first is not None or not video.interlaced)
            and all(track.stream_index is not None for track in self.audio_streams)
            and self.start_seconds is not None
            and self.video_shortfall_seconds is not None
        )


class _MeasuredPlaylist(_Reported):
    """A rendition's media playlist, as the worker measured it from its files."""

    name: str
    bandwidth: int  # peak segment bitrate, bits/s
    average_bandwidth: int
    codecs: str
    segment_count: int
    duration_seconds: float
    playlist_key: str  # where the media playlist was written (S3 key or local path)

    @property
    def uri(self) -> str:
        """The media playlist relative to the master playlist."""
        return media_playlist(self.name)


class RenditionResult(_MeasuredPlaylist):
    """A video rendition (one rung of the ladder)."""

    width: int
    height: int
    frame_rate: float


class AudioRenditionResult(_MeasuredPlaylist):
    """An audio-only rendition (one audio stream of the original); its name is audio-0,
    audio-1, ... and its codecs e.g. mp4a.40.2."""

    stream: int  # the audio stream, 0-based among the original's audio streams
    language: str | None = None  # BCP 47, e.g. en
    display_name: str  # the NAME players list, unique within the original
    default: bool = False  # the group's DEFAULT=YES rendition
    channels: int


class SliceSegment(_Reported):
    uri: str  # relative to the rendition's media playlist
    duration: float  # seconds, as its EXTINF


class SliceSummary(_Reported):
    """One time slice of a rung, as the termination message carries it (always small)."""

    rendition: RenditionResult | None
    """Measured over this slice alone; None for an empty slice: the last one, when the sound
    outlasts the pictures into it (slices are counted on the container's duration, the
    sound's end), which has no picture and so no segments."""
    index: int
    first_pts_seconds: float | None  # the first picture's presentation time in the whole
    # video (None: an empty slice)
    init_uri: str | None = None  # fMP4: this slice's init section
    init_sha256: str | None = None  # equal digests: one EXT-X-MAP serves those slices
    result_key: str  # where the whole SliceResult is stored (S3 key or local path)


class SliceResult(SliceSummary):
    """A slice with its segments: what the operator needs to stitch the rung's media playlist
    without reading any media. Stored as `<rung>/slice_<i>.json` (the segment list of a long
    slice would not fit the 4 KiB termination message)."""

    segments: list[SliceSegment]

    def summary(self) -> SliceSummary:
        return SliceSummary.model_validate(self.model_dump(exclude={"segments"}))
