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
    # Where decoding starts, in seconds from the source's start: at or before the keyframe at
    # or before `encode_start` (the worker finds it by reading packets). An input seek into
    # MPEG-TS lands anywhere in a GOP, and nothing decodes until the next keyframe, so the
    # seek goes to that keyframe and the frames before `encode_start` are trimmed exactly.
    # None: the demuxer finds that keyframe on the file's index (MP4, Matroska: see
    # packets.seeks_to_keyframes), from a seek to `encode_start`.
    decode_from: float | None = None

    @property
    def encode_start(self) -> Fraction:
        return self.start - self.warmup

    @property
    def end(self) -> Fraction:
        return self.start + self.seconds

    @property
    def seek_seconds(self) -> float:
        """Where the input seek goes, in seconds from the source's start."""
        return float(self.encode_start) if self.decode_from is None else self.decode_from

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


def _frames(time: Fraction, frame_rate: Fraction) -> int:
    return round(time * frame_rate)


def _slice_trim(time_slice: TimeSlice, frame_rate: Fraction) -> str:
    """Keep the pictures of [encode_start, end) of the frame grid: `fps` gives its frames the
    time base 1/rate, so these are frame numbers on the unsliced rung's grid."""
    first = _frames(time_slice.encode_start, frame_rate)
    return f"trim=start_pts={first}:end_pts={_frames(time_slice.end, frame_rate)}"


def _warmup_args(time_slice: TimeSlice, frame_rate: Fraction) -> list[str]:
    """Force a keyframe on the slice's first frame and drop the warm-up's packets: with a
    closed GOP those are the first `frames` in decoding order, and no later packet refers to
    them. (Counted, not timed: FFmpeg 5.1 gives the bitstream filter a time base that does not
    match its packets' timestamps.)"""
    frames = _frames(time_slice.warmup, frame_rate)
    if not frames:
        return []
    return ["-force_key_frames", f"expr:eq(n,{frames})",
            "-bsf:v", f"noise=drop=lt(n\\,{frames})"]  # fmt: skip


def _slice_sound_args(time_slice: TimeSlice) -> list[str]:
    """The sound needs no warm-up: it is cut at the slice's start and end, on its true
    timestamps."""
    return ["-af", f"atrim=start={_seconds(time_slice.start)}:end={_seconds(time_slice.end)}"]


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

    With `time_slice`, only that slice: FFmpeg decodes from `time_slice.decode_from` (at or
    before a keyframe) on the source's own timeline (`-copyts`), so the frame grid is the
    unsliced rung's; the pictures before its warm-up and after its end are trimmed on that
    grid, the warm-up's packets are dropped after encoding, so no picture is lost or doubled
    at a join, and every timestamp is already the one it has in the whole rung.
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
    trim = [] if time_slice is None else [_slice_trim(time_slice, rate)]
    shared = [
        *source.progressive_filters(), f"fps={rate}", *source.padding_filters(), *trim,
        "format=yuv420p", f"split={len(rungs)}",
    ]  # fmt: skip
    graph = [f"[0:{source.video_index}]{','.join(shared)}{''.join(branches)}"]
    for i, rung in enumerate(rungs):
        width, height = output_size(source.info.video.width, source.info.video.height, rung.height)
        graph.append(f"[s{i}]scale={width}:{height},setsar=1[v{i}]")

    seek: list[str] = []
    if time_slice is not None and time_slice.encode_start > 0:
        # The file's timestamps less its start, as in the unsliced rung (-start_at_zero), so
        # the slice's pictures reach the encoder at their true times. (-copyts also keeps
        # FFmpeg from repeating the first picture back to 0, which it does where the video
        # starts a little after the sound: the slice that starts the rung needs no -copyts to
        # repeat it as the unsliced rung does.)
        seek = ["-copyts", "-start_at_zero"]
        if time_slice.decode_from is None:
            # The demuxer seeks to the keyframe before `encode_start` on the file's index:
            # every frame from there goes to the filters, as from a seek to `decode_from`.
            seek.append("-noaccurate_seek")
        if time_slice.seek_seconds > 0:
            seek += ["-ss", f"{time_slice.seek_seconds:.6f}"]
    with_sound = audio and source.audio_index is not None
    args = [*seek, *source.input_args(), "-filter_complex", ";".join(graph)]
    for i, rung in enumerate(rungs):
        args += ["-map", f"[v{i}]", *_video_args(rung, preset, gop)]
        if with_sound:
            args += ["-map", f"0:{source.audio_index}", *_audio_args(rung)]
        args += ["-map_metadata", "-1", "-map_chapters", "-1"]
        if time_slice is not None:
            args += _warmup_args(time_slice, rate)
            args += _slice_sound_args(time_slice) if with_sound else []
        args += ["-output_ts_offset", _seconds(TIMESTAMP_HEADROOM)]
        args += _hls_args(packaging, segment_time, output_dir / rung.name, time_slice)
    return args
