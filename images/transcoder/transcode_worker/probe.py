"""Probing a source: metadata, sanity checks and the poster frame."""

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode_worker.errors import BadInputError
from transcode_worker.ffmpeg import ffmpeg, ffprobe, input_options, last_line
from transcode_worker.integrity import check_source_is_whole, declared_span
from transcode_worker.interlace import PROGRESSIVE, Scan, deinterlace_filter, detect_scan
from transcode_worker.packets import keyframe_at_or_before
from videotranscode import (
    AudioStreamInfo,
    AudioTrackInfo,
    SourceInfo,
    VideoStreamInfo,
    language_tag,
)

# Demuxers that read single pictures rather than video.
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "webp")
POSTER_SCAN_SECONDS = 10  # how far past that point to look for a frame that is not black
# Shorter gaps between the pictures' end and the sound's are ordinary (audio frames are
# coarser than video frames) and are left alone.
HOLD_LAST_PICTURE_AFTER_SECONDS = 0.5


def _rational(text: str | None) -> Fraction:
    """`30000/1001` or `64:45` (ffprobe writes ratios both ways); 0 when unknown."""
    try:
        value = Fraction((text or "0").replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return Fraction(0)
    return value if value > 0 else Fraction(0)


def _rotation(stream: dict[str, Any]) -> int:
    for side_data in stream.get("side_data_list", []):
        if "rotation" in side_data:
            return round(float(side_data["rotation"])) % 360
    return round(float(stream.get("tags", {}).get("rotate", 0))) % 360


def _first_stream(streams: list[dict[str, Any]], codec_type: str) -> dict[str, Any] | None:
    for stream in streams:
        # Cover art in audio files shows up as a one-picture "video" stream.
        if stream.get("codec_type") == codec_type and not stream.get("disposition", {}).get(
            "attached_pic"
        ):
            return stream
    return None


def video_stream_index(probe: dict[str, Any]) -> int | None:
    stream = _first_stream(probe.get("streams", []), "video")
    return None if stream is None else int(stream["index"])


def video_field_order(probe: dict[str, Any]) -> str | None:
    stream = _first_stream(probe.get("streams", []), "video")
    return None if stream is None else stream.get("field_order")


def audio_stream_index(probe: dict[str, Any]) -> int | None:
    stream = _first_stream(probe.get("streams", []), "audio")
    return None if stream is None else int(stream["index"])


def audio_streams(probe: dict[str, Any]) -> list[dict[str, Any]]:
    """The audio streams, in order: FFmpeg's `a:0`, `a:1`, ... (the index among them)."""
    return [s for s in probe.get("streams", []) if s.get("codec_type") == "audio"]


def audio_tracks(probe: dict[str, Any]) -> list[AudioTrackInfo]:
    """Every audio stream with its language, title and default disposition."""
    tracks = []
    for index, stream in enumerate(audio_streams(probe)):
        tags = {str(k).lower(): str(v) for k, v in stream.get("tags", {}).items()}
        tracks.append(
            AudioTrackInfo(
                index=index,
                codec=str(stream.get("codec_name", "unknown")),
                channels=int(stream.get("channels", 0)),
                sample_rate=int(stream.get("sample_rate", 0)),
                language=language_tag(tags.get("language")),
                title=tags.get("title") or None,
                default=bool(stream.get("disposition", {}).get("default")),
                stream_index=int(stream["index"]),
            )
        )
    return tracks


def parse_probe(probe: dict[str, Any]) -> SourceInfo:
    """ffprobe JSON → SourceInfo; raises BadInputError for what is not a usable video."""
    fmt = probe.get("format", {})
    container = str(fmt.get("format_name", "unknown"))
    video = _first_stream(probe.get("streams", []), "video")
    if video is None:
        raise BadInputError("the file has no video stream (audio only, or not a video)")
    if any(marker in container for marker in _IMAGE_FORMATS):
        raise BadInputError(f"the file is a still image ({container}), not a video")
    if not video.get("codec_name") or not video.get("width") or not video.get("height"):
        raise BadInputError("the file is not a video FFmpeg can decode (unknown codec or size)")

    rotation = _rotation(video)
    sar = _rational(video.get("sample_aspect_ratio")) or Fraction(1)
    width = round(int(video["width"]) * sar)
    height = int(video["height"])
    if rotation in (90, 270):
        width, height = height, width
    frame_rate = _rational(video.get("avg_frame_rate")) or _rational(video.get("r_frame_rate"))
    if not frame_rate:
        raise BadInputError("the video stream has no frame rate")
    duration = float(fmt.get("duration") or video.get("duration") or 0)

    audio = _first_stream(probe.get("streams", []), "audio")
    return SourceInfo(
        duration_seconds=round(duration, 3),
        container=container,
        size_bytes=int(fmt.get("size", 0)),
        video=VideoStreamInfo(
            codec=str(video["codec_name"]),
            width=width,
            height=height,
            fps=round(float(frame_rate), 3),
            frame_rate=f"{frame_rate.numerator}/{frame_rate.denominator}",
            pixel_format=str(video.get("pix_fmt", "unknown")),
            rotation=rotation,
            stream_index=int(video["index"]),
        ),
        audio=None
        if audio is None
        else AudioStreamInfo(
            codec=str(audio.get("codec_name", "unknown")),
            channels=int(audio.get("channels", 0)),
            sample_rate=int(audio.get("sample_rate", 0)),
        ),
        audio_streams=audio_tracks(probe),
    )


def check_duration(info: SourceInfo, *, minimum: float, maximum: float) -> None:
    seconds = info.duration_seconds
    if seconds < minimum:
        raise BadInputError(f"the video is too short ({seconds:g} s; at least {minimum:g} s)")
    if seconds > maximum:
        raise BadInputError(f"the video is too long ({seconds:g} s; at most {maximum:g} s)")


@dataclass(frozen=True)
class ProbedSource:
    path: Path | str  # a local file, or a presigned URL FFmpeg reads ranges of (a secret)
    info: SourceInfo
    video_index: int
    audio_index: int | None  # the first audio stream's index among all streams
    scan: Scan = PROGRESSIVE
    start_seconds: float = 0.0  # the container's first timestamp (MPEG-TS rarely starts at 0)
    video_shortfall_seconds: float = 0.0  # the pictures stop this long before the end (audio)

    @classmethod
    def from_facts(cls, path: Path | str, info: SourceInfo) -> "ProbedSource":
        """The source as the probe reported it (`SourceInfo.has_encoding_facts`), without
        reading it: no ffprobe, tail check or `idet` again."""
        if not info.has_encoding_facts():
            raise ValueError("the source info lacks facts a rendition needs: probe the source")
        video = info.video
        assert video.stream_index is not None
        assert info.start_seconds is not None
        assert info.video_shortfall_seconds is not None
        audio = info.audio_streams[0].stream_index if info.audio_streams else None
        scan = Scan(interlaced=True, field_first=video.field_first or "auto")
        return cls(
            path, info, video.stream_index, audio, scan if video.interlaced else PROGRESSIVE,
            info.start_seconds, info.video_shortfall_seconds,
        )  # fmt: skip

    def input_args(self) -> list[str]:
        """FFmpeg's input: a local file, or a URL it reads ranges of over HTTP, reconnecting
        at the byte it got to when a connection drops or S3 answers 5xx."""
        return [*input_options(self.path), "-i", str(self.path)]

    def progressive_filters(self) -> list[str]:
        """The filters that turn the source's frames into progressive pictures (maybe none)."""
        deinterlace = deinterlace_filter(self.scan)
        return [] if deinterlace is None else [deinterlace]

    def padding_filters(self) -> list[str]:
        """Where the sound outlasts the pictures (a screen or phone recording stopped oddly),
        the last picture is held to the end, as a player shows it, so no sound is lost."""
        if self.video_shortfall_seconds < HOLD_LAST_PICTURE_AFTER_SECONDS:
            return []
        return [f"tpad=stop_mode=clone:stop_duration={self.video_shortfall_seconds:.3f}"]


def poster_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Even dimensions with the long side at most `long_side`, never upscaled."""
    scale = min(1.0, long_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass(frozen=True)
class PosterOptions:
    at_percent: float = 10
    long_side: int = 640


def write_poster(source: ProbedSource, target: Path, options: PosterOptions) -> None:
    """A JPEG at `at_percent` of the duration, skipping black frames for up to 10 s."""
    info = source.info
    width, height = poster_size(info.video.width, info.video.height, options.long_side)
    picture = ",".join([*source.progressive_filters(), f"scale={width}:{height},setsar=1"])
    not_black = (
        "blackframe=amount=0:threshold=32,"
        "metadata=mode=select:key=lavfi.blackframe.pblack:value=90:function=less"
    )
    at = info.duration_seconds * options.at_percent / 100
    # Decode from the keyframe before that point and drop frames up to it: a seek alone may
    # land mid-GOP, after which nothing decodes until the next keyframe.
    first = source.start_seconds
    keyframe = keyframe_at_or_before(source.path, source.video_index, first + at, first)
    seek = 0.0 if keyframe is None else max(0.0, keyframe.decode_time - first)
    start = ["-ss", f"{seek:.3f}", *source.input_args(), "-map", f"0:{source.video_index}",
             "-ss", f"{at - seek:.3f}"]  # fmt: skip
    end = ["-frames:v", "1", "-q:v", "3", "-y", str(target)]
    ffmpeg([*start, "-t", str(POSTER_SCAN_SECONDS), "-vf", f"{not_black},{picture}", *end])
    if not target.exists():  # every frame in the window is black: take the first anyway
        result = ffmpeg([*start, "-vf", picture, *end])
        if not target.exists():
            raise BadInputError(
                f"no frame could be decoded for the poster ({last_line(result.stderr)})"
            )


def probe_source(
    source: Path | str, *, min_duration: float, max_duration: float, size_bytes: int | None = None
) -> ProbedSource:  # fmt: skip
    """Everything a transcode needs to know about the source (a local file, or a URL with its
    `size_bytes`), or BadInputError."""
    if size_bytes is None:
        assert isinstance(source, Path), "a URL comes with its size"
        size_bytes = source.stat().st_size
    if size_bytes == 0:
        raise BadInputError("the file is empty (0 bytes)")
    raw = ffprobe(source)
    info = parse_probe(raw)
    video_index = video_stream_index(raw)
    assert video_index is not None  # parse_probe has rejected sources without video
    check_duration(info, minimum=min_duration, maximum=max_duration)
    shortfall = round(check_source_is_whole(source, raw, video_index), 3)
    scan = detect_scan(source, video_index, video_field_order(raw))
    field_first = scan.field_first if scan.interlaced else None
    video = info.video.model_copy(
        update={"interlaced": scan.interlaced, "field_first": field_first}
    )
    start = declared_span(raw).start
    # Reported with the rest, so the rendition pods need not find these out again.
    info = info.model_copy(
        update={"video": video, "start_seconds": start, "video_shortfall_seconds": shortfall}
    )
    return ProbedSource(source, info, video_index, audio_stream_index(raw), scan, start, shortfall)
