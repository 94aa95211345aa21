"""The FFmpeg command for one or more rungs from a single decode (pure functions)."""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from transcode_worker.probe import ProbedSource
from videotranscode import MEDIA_PLAYLIST, RenditionSpec

MAX_FRAME_RATE = 60
INIT_SEGMENT = "init.mp4"


@dataclass(frozen=True)
class Packaging:
    segment_seconds: int = 6
    gop_seconds: int = 2
    segment_type: Literal["fmp4", "mpegts"] = "fmp4"

    def __post_init__(self) -> None:
        if self.gop_seconds < 1 or self.segment_seconds % self.gop_seconds:
            raise ValueError("segment seconds must be a positive multiple of GOP seconds")

    @property
    def segment_extension(self) -> str:
        return "m4s" if self.segment_type == "fmp4" else "ts"


def output_frame_rate(source_rate: Fraction) -> Fraction:
    """The source rate, halved until at most 60 fps (HLS players' limit)."""
    rate = source_rate
    while rate > MAX_FRAME_RATE:
        rate /= 2
    return rate


def gop_frames(frame_rate: Fraction, gop_seconds: int) -> int:
    return max(1, round(frame_rate * gop_seconds))


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Scale so the short side is `short_side`, never upscaling; both sides rounded down
    to even numbers (H.264 4:2:0 needs them), so neither exceeds the source."""
    target, source = min(short_side, width, height), min(width, height)

    def even(side: int) -> int:
        return max(2, side * target // (source * 2) * 2)  # exact integer arithmetic

    return even(width), even(height)


def _video_args(rung: RenditionSpec, preset: str, gop: int) -> list[str]:
    peak = rung.peak_video_bitrate
    return [
        "-c:v", "libx264", "-preset", preset, "-profile:v", "high",
        "-b:v", str(rung.video_bitrate), "-maxrate", str(peak), "-bufsize", str(2 * peak),
        # A closed, fixed GOP without scene-cut keyframes: every rung, encoded by any
        # process, puts keyframes (and so segment boundaries) on the same frames.
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
    ]  # fmt: skip


def _audio_args(rung: RenditionSpec) -> list[str]:
    return ["-c:a", "aac", "-b:a", str(rung.audio_bitrate), "-ac", "2", "-ar", "48000"]


def _hls_args(packaging: Packaging, rung_dir: Path) -> list[str]:
    args = [
        "-f", "hls", "-hls_time", str(packaging.segment_seconds),
        "-hls_playlist_type", "vod", "-hls_flags", "independent_segments",
        "-hls_segment_type", packaging.segment_type,
        "-hls_segment_filename", str(rung_dir / f"seg_%05d.{packaging.segment_extension}"),
    ]  # fmt: skip
    if packaging.segment_type == "fmp4":
        args += ["-hls_fmp4_init_filename", INIT_SEGMENT]
    return [*args, str(rung_dir / MEDIA_PLAYLIST)]


def build_encode_args(
    source: ProbedSource,
    rungs: Sequence[RenditionSpec],
    packaging: Packaging,
    output_dir: Path,
    preset: str,
) -> list[str]:
    """FFmpeg arguments that decode the source once and write each rung under
    `<output_dir>/<rung.name>/`; the same arguments for one rung or a whole ladder."""
    rate = output_frame_rate(Fraction(source.info.video.frame_rate))
    gop = gop_frames(rate, packaging.gop_seconds)
    branches = [f"[s{i}]" for i in range(len(rungs))]
    # Deinterlacing comes first: it needs the source's own frames and field order.
    shared = [
        *source.progressive_filters(), f"fps={rate}", *source.padding_filters(),
        "format=yuv420p", f"split={len(rungs)}",
    ]  # fmt: skip
    graph = [f"[0:{source.video_index}]{','.join(shared)}{''.join(branches)}"]
    for i, rung in enumerate(rungs):
        width, height = output_size(source.info.video.width, source.info.video.height, rung.height)
        graph.append(f"[s{i}]scale={width}:{height},setsar=1[v{i}]")

    args = ["-i", str(source.path), "-filter_complex", ";".join(graph)]
    for i, rung in enumerate(rungs):
        args += ["-map", f"[v{i}]", *_video_args(rung, preset, gop)]
        if source.audio_index is not None:
            args += ["-map", f"0:{source.audio_index}", *_audio_args(rung)]
        args += ["-map_metadata", "-1", "-map_chapters", "-1"]
        args += _hls_args(packaging, output_dir / rung.name)
    return args
