"""Time slices of a rung: how long each is and how many cover the source (pure).

The worker encodes slice i; the operator creates one Indexed Job with one completion per
slice and stitches their results. Both count slices with these functions, so they agree.
A slice is a whole number of GOPs at the rung's output frame rate: slice i starts on the
keyframe grid an unsliced encode has (every `gop_frames` frames from t = 0).
"""

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BeforeValidator

MAX_FRAME_RATE = 60
AUTO: Literal["auto"] = "auto"
OFF: Literal["off"] = "off"


def _auto_off_or_seconds(value: object) -> object:
    # One message for the whole union (pydantic would report each member's failure).
    if value in (AUTO, OFF) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError("slicing is auto, off or a whole number of seconds")


Slicing = Annotated[int | Literal["auto", "off"], BeforeValidator(_auto_off_or_seconds)]


def output_frame_rate(source_rate: Fraction) -> Fraction:
    """The source rate, halved until at most 60 fps (HLS players' limit)."""
    rate = source_rate
    while rate > MAX_FRAME_RATE:
        rate /= 2
    return rate


def gop_frames(frame_rate: Fraction, gop_seconds: int) -> int:
    return max(1, round(frame_rate * gop_seconds))


def slice_length(slice_seconds: int, gop_seconds: int, frame_rate: Fraction) -> Fraction:
    """The exact length of a slice of nominally `slice_seconds` (whole GOPs at `frame_rate`),
    e.g. 30.03 s for 30 s at 29.97 fps."""
    return slice_seconds // gop_seconds * gop_frames(frame_rate, gop_seconds) / frame_rate


def slice_count(duration_seconds: float, length: Fraction) -> int:
    """How many slices of `length` cover the source."""
    # The duration as written (to the millisecond), not its binary float: 6.006 s is exactly
    # three 2.002 s slices, while Fraction(6.006) is a hair more and made a 4th, empty one.
    return max(1, math.ceil(Fraction(str(duration_seconds)) / length))


def chosen_slice_seconds(
    slicing: Slicing, *, duration_seconds: float, segment_seconds: int, auto_threshold: int,
    auto_seconds: int,
) -> int | None:  # fmt: skip
    """The slice length a rung is encoded in, or None for one pod per rung.

    `auto`: sources longer than `auto_threshold` seconds are sliced every `auto_seconds`
    (rounded up to whole segments); `off`: never; a number: slices of that length, when the
    source is longer than one slice."""
    if slicing == OFF:
        return None
    if slicing == AUTO:
        if duration_seconds <= auto_threshold:
            return None
        seconds = math.ceil(auto_seconds / segment_seconds) * segment_seconds
    else:
        seconds = slicing
    return seconds if duration_seconds > seconds else None


def parse_indexes(text: str | None) -> frozenset[int]:
    """Slice indexes as Kubernetes writes an Indexed Job's `completedIndexes`, e.g. "1,3-5,7"
    (empty: none)."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        first, _, last = part.partition("-")
        indexes.update(range(int(first), int(last or first) + 1))
    return frozenset(indexes)


def format_indexes(indexes: Iterable[int]) -> str:
    """Slice indexes as Kubernetes writes them: "1,3-5,7"; a run of exactly two is "1,2"."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[start], ordered[end]
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
        start = end + 1
    return ",".join(parts)
