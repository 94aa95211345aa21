"""What the worker reports (termination message) and the operator records in the status."""

from pydantic import ConfigDict

from videotranscode._model import CamelModel
from videotranscode.layout import media_playlist


class _Reported(CamelModel):
    # Written by the worker, read by the operator: an older reader ignores newer fields.
    model_config = ConfigDict(extra="ignore")


class VideoStreamInfo(_Reported):
    codec: str
    width: int  # as displayed: after rotation and pixel aspect ratio
    height: int
    fps: float
    frame_rate: str  # exact rational, e.g. "30000/1001"
    pixel_format: str
    rotation: int  # display-matrix rotation, counter-clockwise degrees: 0/90/180/270
    interlaced: bool = False  # the renditions are deinterlaced (older results lack it)


class AudioStreamInfo(_Reported):
    codec: str
    channels: int
    sample_rate: int


class SourceInfo(_Reported):
    duration_seconds: float
    container: str
    size_bytes: int
    video: VideoStreamInfo
    audio: AudioStreamInfo | None = None


class RenditionResult(_Reported):
    name: str
    width: int
    height: int
    frame_rate: float
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
