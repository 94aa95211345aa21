"""Time slices of a rung: how long each is and how many cover the source (pure).

The worker encodes slice i; the operator creates one Indexed Job with one completion per
slice and stitches their results. Both cut the rung with `SliceGrid`, so they agree.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SliceGrid:
    """Where a rung's slices start and end. Slice 0 is a short lead-in, one segment long, so
    the first playable moment (every rung's first slice stored) comes within seconds even when
    slices are long; the others are `slice_seconds` long; the last one ends with the source.
    Lengths are whole GOPs at the rung's output `frame_rate`, e.g. 30.03 s for 30 s at
    29.97 fps, so every slice starts on the keyframe grid an unsliced encode has."""

    slice_seconds: int  # a multiple of segment_seconds
    segment_seconds: int  # a multiple of gop_seconds
    gop_seconds: int
    frame_rate: Fraction

    @property
    def lead_in_seconds(self) -> int:
        return min(self.segment_seconds, self.slice_seconds)

    def _exact(self, seconds: int) -> Fraction:
        gops = seconds // self.gop_seconds
        return gops * gop_frames(self.frame_rate, self.gop_seconds) / self.frame_rate

    def _nominal_start(self, index: int) -> int:
        return 0 if index == 0 else self.lead_in_seconds + (index - 1) * self.slice_seconds

    def start(self, index: int) -> Fraction:
        return self._exact(self._nominal_start(index))

    def length(self, index: int) -> Fraction:
        """How long slice `index` is at most (the last one may be shorter)."""
        return self._exact(self.lead_in_seconds if index == 0 else self.slice_seconds)

    def first_segment(self, index: int) -> int:
        """The number of slice `index`'s first segment in the whole rung."""
        return self._nominal_start(index) // self.segment_seconds

    def count(self, duration_seconds: float) -> int:
        """How many slices cover a source of `duration_seconds`."""
        # The duration as written (to the millisecond), not its binary float: 6.006 s is exactly
        # three 2.002 s slices, while Fraction(6.006) is a hair more and made a 4th, empty one.
        after_lead_in = Fraction(str(duration_seconds)) - self.length(0)
        return 1 + max(0, math.ceil(after_lead_in / self.length(1)))

    def durations(self, duration_seconds: float) -> list[float]:
        """Each slice's length in seconds, the last one ending with the source."""
        count = self.count(duration_seconds)
        last = duration_seconds - float(self.start(count - 1))
        return [float(self.length(index)) for index in range(count - 1)] + [max(last, 0.0)]


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
