"""HLS playlists: the master, written from measured rendition results, and the rule every
media playlist's target duration keeps."""

import math
from collections.abc import Iterable, Sequence

from videotranscode.results import RenditionResult, SliceResult

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


def finished_prefix(slices: Iterable[SliceResult]) -> list[SliceResult]:
    """The slices 0, 1, 2, ... that are all there, in order; stops at the first missing one."""
    by_index = {s.index: s for s in slices}
    prefix: list[SliceResult] = []
    while len(prefix) in by_index:
        prefix.append(by_index[len(prefix)])
    return prefix


def stitch_media_playlist(slices: Iterable[SliceResult], slice_count: int) -> str:
    """A rung's media playlist from its slices' results, with no media read or rewritten.

    With all `slice_count` slices: a VOD playlist with EXT-X-ENDLIST. Otherwise an EVENT
    playlist of the contiguous finished prefix, which players extend as it grows. Slices whose
    init sections are identical (same digest) share one EXT-X-MAP; where one differs, a
    discontinuity and its own map follow, rather than a stream that fails to decode.
    """
    prefix = finished_prefix(slices)
    if not prefix:
        raise ValueError("a media playlist needs the first slice")
    if len(prefix) > slice_count:
        raise ValueError(f"{len(prefix)} slices finished, but the rung has {slice_count}")
    segments = [segment for s in prefix for segment in s.segments]
    fmp4 = prefix[0].init_uri is not None
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{7 if fmp4 else 6}",
        f"#EXT-X-TARGETDURATION:{target_duration(s.duration for s in segments)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if len(prefix) == slice_count else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    init: str | None = None
    for part in prefix:
        if part.init_uri is not None and part.init_sha256 != init:
            if init is not None:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="{part.init_uri}"')
            init = part.init_sha256
        for segment in part.segments:
            lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    if len(prefix) == slice_count:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
