"""A sliced rendition, as the operator sees it (pure): which slices an Indexed Job has
finished, how far the rendition has got, and what its slices measured together."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from transcode_operator.settings import SlicingSettings
from videotranscode import (
    RenditionResult,
    SliceSummary,
    SourceInfo,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
)
from videotranscode.slicing import (
    SliceGrid,
    chosen_slice_seconds,
    output_frame_rate,
    parse_indexes,
)


def slice_seconds_for(
    spec: VideoTranscodeSpec, source: SourceInfo, settings: SlicingSettings
) -> int | None:
    """The slice length this transcode's renditions are encoded in (None: unsliced)."""
    return chosen_slice_seconds(
        spec.slicing, duration_seconds=source.duration_seconds,
        segment_seconds=spec.segment_seconds, auto_threshold=settings.auto_threshold_seconds,
        auto_seconds=settings.auto_seconds,
    )  # fmt: skip


def slice_durations(
    source: SourceInfo, slice_seconds: int, spec: VideoTranscodeSpec
) -> list[float]:  # fmt: skip
    """The length of each slice of the transcode's video rungs, in seconds."""
    rate = output_frame_rate(Fraction(source.video.frame_rate))
    grid = SliceGrid(slice_seconds, spec.segment_seconds, spec.gop_seconds, rate)
    return grid.durations(source.duration_seconds)


@dataclass(frozen=True)
class SlicePlan:
    """A sliced rendition's slice lengths and the slices stored so far."""

    durations: list[float] = field(default_factory=list)
    stored: frozenset[int] = frozenset()


def slice_plans(
    status: VideoTranscodeStatus, spec: VideoTranscodeSpec
) -> dict[str, SlicePlan]:  # fmt: skip
    """Each sliced rendition's plan, from its status (none when the transcode is unsliced)."""
    if not status.slice_seconds or status.source is None:
        return {}
    durations = slice_durations(status.source, status.slice_seconds, spec)
    return {
        rung.name: SlicePlan(durations, parse_indexes(rung.completed_slices))
        for rung in status.renditions
        if rung.slices
    }


def rendition_progress(
    durations: list[float], done: Iterable[int], live: Mapping[int, float]
) -> float:
    """Percent of a rendition encoded: its slices' progress weighted by their durations."""
    total = sum(durations)
    if not total:
        return 0.0
    finished = set(done)
    encoded = sum(
        duration * (100.0 if index in finished else min(live.get(index, 0.0), 100.0))
        for index, duration in enumerate(durations)
    )
    return round(encoded / total, 1)


def measured_together(
    name: str, slices: Iterable[SliceSummary], playlist_key: str
) -> RenditionResult:
    """The rendition as its slices measured it: the peak of their peaks, their duration-weighted
    average bitrate, and the picture they share (an empty slice measured nothing)."""
    parts = sorted(slices, key=lambda part: part.index)
    results = [part.rendition for part in parts if part.rendition is not None]
    if not results:
        raise ValueError("a rendition needs at least one measured slice")
    duration = sum(result.duration_seconds for result in results)
    average = sum(r.average_bandwidth * r.duration_seconds for r in results) / (duration or 1)
    first = results[0]
    return first.model_copy(
        update={
            "name": name,
            "bandwidth": max(result.bandwidth for result in results),
            "average_bandwidth": round(average),
            "segment_count": sum(result.segment_count for result in results),
            "duration_seconds": duration,
            "playlist_key": playlist_key,
        }
    )
