"""The FFmpeg command for one or more rungs from a single decode (pure functions)."""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from transcode_worker.probe import ProbedSource
from videotranscode import MEDIA_PLAYLIST, RenditionSpec
from videotranscode.slicing import gop_frames, output_frame_rate

INIT_SEGMENT = "init.mp4"
# Every slice's timestamps are shifted by the same small offset so that none starts with a
# negative decode time (B-frame delay, AAC priming): the muxer would move only slice 0, by
# an amount the encoder decides, and the joins would no longer line up. Whole rungs and the
# audio renditions (transcode_worker.audio) get the same offset: separate audio and video
# playlists are played in sync by their timestamps, so all share one timeline.
TIMESTAMP_HEADROOM = Fraction(1)


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


@dataclass(frozen=True)
class TimeSlice:
    """[start, start + seconds) of the source, encoded with its true timestamps."""

    index: int
    start: Fraction  # seconds from the source's start, on the output frame grid
    seconds: Fraction  # at most this long: the last slice ends with the source
    first_segment: int  # the number of its first segment in the whole rung
    # Encoded before `start` and dropped, whole frames: x264's rate control starts cold, and
    # without these frames the slice's first pictures would be visibly softer than the same
    # pictures in the unsliced rung (0 for the first slice, which starts where the rung does).
    warmup: Fraction = Fraction(0)

    @property
    def encode_start(self) -> Fraction:
        return self.start - self.warmup

    @property
    def output_offset(self) -> Fraction:
        """Where the first encoded picture (a warm-up one, if any) goes on the output timeline."""
        return self.encode_start + TIMESTAMP_HEADROOM

    @property
    def init_segment(self) -> str:
        return f"init_{self.index}.mp4"

    @property
    def playlist(self) -> str:
        """FFmpeg's playlist of this slice alone: read by the worker, never published."""
        return f"slice_{self.index}.m3u8"


def _seconds(value: Fraction) -> str:
    return f"{float(value):.6f}"


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


def _warmup_args(time_slice: TimeSlice, frame_rate: Fraction, *, audio: bool) -> list[str]:
    """Encode the warm-up frames, force a keyframe on the slice's first frame and drop the
    packets before it: with a closed GOP those are the first `frames` in decoding order, and
    no later packet refers to them. (Counted, not timed: FFmpeg 5.1 gives the bitstream
    filter a time base that does not match its packets' timestamps.) The sound needs no
    warm-up: it is cut at the slice's start, keeping its timestamps."""
    frames = round(time_slice.warmup * frame_rate)
    if not frames:
        return []
    args = ["-force_key_frames", f"expr:eq(n,{frames})",
            "-bsf:v", f"noise=drop=lt(n\\,{frames})"]  # fmt: skip
    return [*args, "-af", f"atrim=start={_seconds(time_slice.warmup)}"] if audio else args


def _hls_args(
    packaging: Packaging, segment_time: Fraction, rung_dir: Path, time_slice: TimeSlice | None
) -> list[str]:
    args = [
        "-f", "hls", "-hls_time", _seconds(segment_time),
        "-hls_playlist_type", "vod", "-hls_flags", "independent_segments",
        "-hls_segment_type", packaging.segment_type,
        "-hls_segment_filename", str(rung_dir / f"seg_%05d.{packaging.segment_extension}"),
    ]  # fmt: skip
    if time_slice is None:
        if packaging.segment_type == "fmp4":
            args += ["-hls_fmp4_init_filename", INIT_SEGMENT,
                     "-hls_segment_options", "movflags=+frag_discont"]  # fmt: skip
        return [*args, str(rung_dir / MEDIA_PLAYLIST)]
    # Numbered as in the whole rung, so no two slices write the same name.
    args += ["-start_number", str(time_slice.first_segment)]
    if packaging.segment_type == "fmp4":
        # frag_discont: each fragment's tfdt carries the true time (without it every slice's
        # tfdt starts at 0 and the offset hides in an edit list, which differs per slice).
        args += ["-hls_fmp4_init_filename", time_slice.init_segment,
                 "-hls_segment_options", "movflags=+frag_discont"]  # fmt: skip
    return [*args, str(rung_dir / time_slice.playlist)]


def build_encode_args(
    source: ProbedSource,
    rungs: Sequence[RenditionSpec],
    packaging: Packaging,
    output_dir: Path,
    preset: str,
    *,
    time_slice: TimeSlice | None = None,
    audio: bool = True,
) -> list[str]:
    """FFmpeg arguments that decode the source once and write each rung under
    `<output_dir>/<rung.name>/`; the same arguments for one rung or a whole ladder.

    With `time_slice`, only that slice: FFmpeg seeks to the keyframe before its warm-up and
    drops what comes before it (an input `-ss` while transcoding is exact), encodes the warm-up
    and drops its packets, so no picture is lost or doubled at a join; its timestamps are then
    moved back to their place in the video.
    Without `audio`, the rungs are video only (the sound is in audio renditions).
    """
    rate = output_frame_rate(Fraction(source.info.video.frame_rate))
    gop = gop_frames(rate, packaging.gop_seconds)
    # FFmpeg cuts a segment at the first keyframe at least -hls_time after the previous cut;
    # whole GOPs may be a little shorter than `gop_seconds` (27.15 fps: 54 frames, 1.989 s), so
    # ask for the segment's exact length less half a frame, and every segment is the same GOPs.
    segment_time = (
        gop * (packaging.segment_seconds // packaging.gop_seconds) - Fraction(1, 2)
    ) / rate
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

    seek = [] if time_slice is None else ["-ss", _seconds(time_slice.encode_start)]
    args = [*seek, *source.input_args(), "-filter_complex", ";".join(graph)]
    for i, rung in enumerate(rungs):
        args += ["-map", f"[v{i}]", *_video_args(rung, preset, gop)]
        if audio and source.audio_index is not None:
            args += ["-map", f"0:{source.audio_index}", *_audio_args(rung)]
        args += ["-map_metadata", "-1", "-map_chapters", "-1"]
        if time_slice is not None:
            args += [*_warmup_args(time_slice, rate,
                                   audio=audio and source.audio_index is not None),
                     "-t", _seconds(time_slice.warmup + time_slice.seconds),
                     "-output_ts_offset", _seconds(time_slice.output_offset)]  # fmt: skip
        else:
            args += ["-output_ts_offset", _seconds(TIMESTAMP_HEADROOM)]
        args += _hls_args(packaging, segment_time, output_dir / rung.name, time_slice)
    return args
