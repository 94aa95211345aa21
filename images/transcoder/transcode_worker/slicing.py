"""Where slice i of a rung starts, how long it is and its segment numbers (pure); the
contract's `videotranscode.slicing` says how long slices are and how many there are."""

from fractions import Fraction

from transcode_worker.encode import Packaging, TimeSlice
from videotranscode.slicing import slice_count, slice_length

# Encoded before each slice (but the first) and dropped: 1 s brings the joins' frames within
# a few thousandths of SSIM of the unsliced rung (bench/slicing.py) for ~3 % more encoding.
WARMUP_SECONDS = Fraction(1)


def plan_slice(
    index: int, slice_seconds: int, packaging: Packaging, frame_rate: Fraction
) -> TimeSlice:
    """Slice `index` of `slice_seconds` (a multiple of the segment length) at `frame_rate`."""
    if slice_seconds < 1 or slice_seconds % packaging.segment_seconds:
        raise ValueError("slice seconds must be a positive multiple of segment seconds")
    length = slice_length(slice_seconds, packaging.gop_seconds, frame_rate)
    start = index * length
    # Whole frames, never before the source's start.
    warmup = min(start, round(WARMUP_SECONDS * frame_rate) / frame_rate)
    return TimeSlice(
        index=index,
        start=start,
        seconds=length,
        first_segment=index * slice_seconds // packaging.segment_seconds,
        warmup=warmup,
    )


def slice_total(duration_seconds: float, time_slice: TimeSlice) -> int:
    """How many slices of this length cover the source."""
    return slice_count(duration_seconds, time_slice.seconds)


def is_sound_tail(
    time_slice: TimeSlice, total: int, frame_rate: Fraction, pictures_end: float
) -> bool:
    """Whether the slice may have no picture: the last one, when the pictures (not held to
    the end) stop before it starts, within a frame (the pictures are on the rung's frame grid,
    `pictures_end` is the probed end). Slices are counted on the container's duration, the
    sound's end, so a sound that outlasts the pictures may reach a slice of its own."""
    return time_slice.index == total - 1 and pictures_end <= time_slice.start + 1 / frame_rate
