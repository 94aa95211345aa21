"""HLS playlists: the master, written from measured rendition results, and the rule every
media playlist's target duration keeps."""

import math
from collections.abc import Iterable, Sequence

from videotranscode.results import RenditionResult

# The first variant is what Safari starts with: the best rung that most connections sustain.
DEFAULT_START_BANDWIDTH = 2_500_000


def default_variant_index(variants: Sequence[RenditionResult]) -> int:
    """The highest rung whose average bandwidth is at most 2.5 Mb/s, else the lowest."""
    by_bandwidth = sorted(range(len(variants)), key=lambda i: variants[i].average_bandwidth)
    affordable = [
        i for i in by_bandwidth if variants[i].average_bandwidth <= DEFAULT_START_BANDWIDTH
    ]
    return affordable[-1] if affordable else by_bandwidth[0]


def _stream_inf(variant: RenditionResult) -> str:
    attributes = [
        f"BANDWIDTH={variant.bandwidth}",
        f"AVERAGE-BANDWIDTH={variant.average_bandwidth}",
        f"RESOLUTION={variant.width}x{variant.height}",
        f"FRAME-RATE={variant.frame_rate:.3f}",
        f'CODECS="{variant.codecs}"',
    ]
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)


def build_master_playlist(variants: Sequence[RenditionResult]) -> str:
    """Master playlist: the default variant first, then the rest by ascending bandwidth."""
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    first = default_variant_index(variants)
    rest = sorted((v for i, v in enumerate(variants) if i != first), key=lambda v: v.bandwidth)
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in [variants[first], *rest]:
        lines += [_stream_inf(variant), variant.uri]
    return "\n".join(lines) + "\n"


def target_duration(segment_seconds: Iterable[float]) -> int:
    """EXT-X-TARGETDURATION for segments of these lengths (RFC 8216 section 4.3.3.1): the
    longest rounded to the nearest integer, halves up (the strictest reading of "nearest"), and
    never below 1."""
    durations = list(segment_seconds)
    if not durations:
        raise ValueError("a media playlist needs at least one segment")
    return max(1, *(_rounded_half_up(duration) for duration in durations))


def _rounded_half_up(seconds: float) -> int:
    return math.floor(seconds + 0.5)


def target_duration_errors(media_playlist: str) -> list[str]:
    """Where a media playlist breaks the target-duration rule; empty when it keeps it."""
    targets: list[int] = []
    segments: list[tuple[str, str]] = []  # (EXTINF duration as written, URI)
    duration: str | None = None
    for raw in media_playlist.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            targets.append(int(line.partition(":")[2]))
        elif line.startswith("#EXTINF:"):
            duration = line.partition(":")[2].partition(",")[0].strip()
        elif line and not line.startswith("#") and duration is not None:
            segments.append((duration, line))
            duration = None
    if not targets:
        return ["no EXT-X-TARGETDURATION"]
    if len(targets) > 1:
        return [f"more than one EXT-X-TARGETDURATION: {targets}"]
    if not segments:
        return ["no segment"]
    errors = [f"EXT-X-TARGETDURATION {targets[0]} is below 1"] if targets[0] < 1 else []
    for number, (written, uri) in enumerate(segments, start=1):
        rounded = _rounded_half_up(float(written))
        if rounded > targets[0]:
            errors.append(
                f"segment {number} ({uri}): {written} s rounds to {rounded} > {targets[0]}"
            )
    return errors
