"""Time slices of a rung: where slice i starts, how long it is, its segment numbers (pure).

A slice is a whole number of GOPs at the rung's output frame rate, so slice i starts on the
keyframe grid an unsliced encode of the rung has (every `gop_frames` frames from t = 0), and
its segments are the unsliced encode's segments, numbered as there.
"""

import math
from fractions import Fraction

from transcode_worker.encode import Packaging, TimeSlice, gop_frames


def plan_slice(
    index: int, slice_seconds: int, packaging: Packaging, frame_rate: Fraction
) -> TimeSlice:
    """Slice `index` of `slice_seconds` (a multiple of the segment length) at `frame_rate`."""
    if slice_seconds < 1 or slice_seconds % packaging.segment_seconds:
        raise ValueError("slice seconds must be a positive multiple of segment seconds")
    gops = slice_seconds // packaging.gop_seconds
    length = gops * gop_frames(frame_rate, packaging.gop_seconds) / frame_rate
    return TimeSlice(
        index=index,
        start=index * length,
        seconds=length,
        first_segment=index * slice_seconds // packaging.segment_seconds,
    )


def slice_total(duration_seconds: float, time_slice: TimeSlice) -> int:
    """How many slices of this length cover the source."""
    return max(1, math.ceil(duration_seconds / time_slice.seconds))
