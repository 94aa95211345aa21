"""Slice i of a rung as the worker encodes it (pure): the contract's `SliceGrid` says where
it starts, how long it is and its segment numbers; the worker adds the warm-up."""

from fractions import Fraction

from transcode_worker.encode import Packaging, TimeSlice
from videotranscode.slicing import SliceGrid

# Encoded before each slice (but the first) and dropped: 1 s brings the joins' frames within
# a few thousandths of SSIM of the unsliced rung (bench/slicing.py) for ~3 % more encoding.
WARMUP_SECONDS = Fraction(1)


def slice_grid(slice_seconds: int, packaging: Packaging, frame_rate: Fraction) -> SliceGrid:
    """How a rung at `frame_rate` is cut in slices of `slice_seconds` (a multiple of the
    segment length)."""
    if slice_seconds < 1 or slice_seconds % packaging.segment_seconds:
        raise ValueError("slice seconds must be a positive multiple of segment seconds")
    return SliceGrid(slice_seconds, packaging.segment_seconds, packaging.gop_seconds, frame_rate)


def plan_slice(index: int, grid: SliceGrid) -> TimeSlice:
    """Slice `index` of the rung."""
    start = grid.start(index)
    # Whole frames, never before the source's start.
    warmup = min(start, round(WARMUP_SECONDS * grid.frame_rate) / grid.frame_rate)
    return TimeSlice(
        index=index,
        start=start,
        seconds=grid.length(index),
        first_segment=grid.first_segment(index),
        warmup=warmup,
    )


def is_sound_tail(
    time_slice: TimeSlice, total: int, frame_rate: Fraction, pictures_end: float
) -> bool:
    """Whether the slice may have no picture: the last one, when the pictures (not held to
    the end) stop before it starts, within a frame (the pictures are on the rung's frame grid,
    `pictures_end` is the probed end). Slices are counted on the container's duration, the
    sound's end, so a sound that outlasts the pictures may reach a slice of its own."""
    return time_slice.index == total - 1 and pictures_end <= time_slice.start + 1 / frame_rate
