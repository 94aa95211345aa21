"""HLS playlists: the master, written from measured rendition results (video variants and
the audio renditions of their group), and the rule every media playlist's target duration
keeps."""

import math
import re
from collections.abc import Iterable, Sequence

from videotranscode.audio import AUDIO_GROUP_ID
from videotranscode.results import AudioRenditionResult, RenditionResult, SliceResult

# The first variant is what Safari starts with: the best rung that most connections sustain.
DEFAULT_START_BANDWIDTH = 2_500_000


def _with_audio(variant: RenditionResult, audio: Sequence[AudioRenditionResult]) -> tuple[int, int]:
    """(BANDWIDTH, AVERAGE-BANDWIDTH) of the variant played with the costliest audio
    rendition of its group (RFC 8216 section 4.3.4.2: they cover every rendition it may use)."""
    if not audio:
        return variant.bandwidth, variant.average_bandwidth
    return (
        variant.bandwidth + max(a.bandwidth for a in audio),
        variant.average_bandwidth + max(a.average_bandwidth for a in audio),
    )


def default_variant_index(
    variants: Sequence[RenditionResult], audio: Sequence[AudioRenditionResult] = ()
) -> int:
    """The highest rung whose average bandwidth (with its audio) is at most 2.5 Mb/s, else the
    lowest."""
    averages = [_with_audio(variant, audio)[1] for variant in variants]
    by_bandwidth = sorted(range(len(variants)), key=lambda i: averages[i])
    affordable = [i for i in by_bandwidth if averages[i] <= DEFAULT_START_BANDWIDTH]
    return affordable[-1] if affordable else by_bandwidth[0]


def _codecs(variant: RenditionResult, audio: Sequence[AudioRenditionResult]) -> str:
    """The variant's codecs and those of its audio group, each once, in order."""
    listed = ",".join([variant.codecs, *(a.codecs for a in audio)]).split(",")
    return ",".join(dict.fromkeys(c.strip() for c in listed if c.strip()))


def _stream_inf(variant: RenditionResult, audio: Sequence[AudioRenditionResult]) -> str:
    bandwidth, average = _with_audio(variant, audio)
    attributes = [
        f"BANDWIDTH={bandwidth}",
        f"AVERAGE-BANDWIDTH={average}",
        f"RESOLUTION={variant.width}x{variant.height}",
        f"FRAME-RATE={variant.frame_rate:.3f}",
        f'CODECS="{_codecs(variant, audio)}"',
    ]
    if audio:
        attributes.append(f'AUDIO="{AUDIO_GROUP_ID}"')
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)


def _media(rendition: AudioRenditionResult, default: bool) -> str:
    """One EXT-X-MEDIA entry of the audio group (RFC 8216 section 4.3.4.1)."""
    attributes = [
        "TYPE=AUDIO",
        f'GROUP-ID="{AUDIO_GROUP_ID}"',
        f'NAME="{rendition.display_name}"',
        *([f'LANGUAGE="{rendition.language}"'] if rendition.language else []),
        f"DEFAULT={'YES' if default else 'NO'}",
        # A player may pick a track by the user's language only when it has one; DEFAULT=YES
        # requires AUTOSELECT=YES.
        f"AUTOSELECT={'YES' if default or rendition.language else 'NO'}",
        f'CHANNELS="{rendition.channels}"',
        f'URI="{rendition.uri}"',
    ]
    return "#EXT-X-MEDIA:" + ",".join(attributes)


def _audio_group(audio: Sequence[AudioRenditionResult]) -> list[str]:
    """The group's entries by stream; exactly one DEFAULT=YES: the first marked default (the
    source's default disposition), else the first."""
    ordered = sorted(audio, key=lambda a: a.stream)
    names = [a.display_name for a in ordered]
    if len(set(names)) != len(names):
        raise ValueError(f"audio rendition names must be unique in the group: {names}")
    default = next((i for i, a in enumerate(ordered) if a.default), 0)
    return [_media(rendition, i == default) for i, rendition in enumerate(ordered)]


def build_master_playlist(
    variants: Sequence[RenditionResult], audio: Sequence[AudioRenditionResult] = ()
) -> str:
    """Master playlist: the audio group (one EXT-X-MEDIA per audio rendition) when there is
    audio, then the default variant first and the rest by ascending bandwidth, each referring
    to the audio group."""
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    first = default_variant_index(variants, audio)
    rest = sorted((v for i, v in enumerate(variants) if i != first), key=lambda v: v.bandwidth)
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS", *_audio_group(audio)]
    for variant in [variants[first], *rest]:
        lines += [_stream_inf(variant, audio), variant.uri]
    return "\n".join(lines) + "\n"


_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)')
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


def attributes(tag_line: str) -> dict[str, str]:
    """The attribute list of a tag line (`#EXT-X-MEDIA:TYPE=AUDIO,NAME="x"`), quotes removed."""
    listed = tag_line.partition(":")[2]
    return {key: value.strip('"') for key, value in _ATTRIBUTE.findall(listed)}


def _group_errors(group: str, entries: list[dict[str, str]]) -> list[str]:
    errors = []
    names = [entry.get("NAME") for entry in entries]
    if len(set(names)) != len(names):
        errors.append(f'audio group "{group}": NAME values repeat: {names}')
    defaults = [entry.get("NAME") for entry in entries if entry.get("DEFAULT") == "YES"]
    if len(defaults) != 1:
        errors.append(f'audio group "{group}": {len(defaults)} DEFAULT=YES entries, not 1')
    for entry in entries:
        name = entry.get("NAME")
        if not name:
            errors.append(f'audio group "{group}": an entry without NAME')
        if entry.get("DEFAULT") == "YES" and entry.get("AUTOSELECT") != "YES":
            errors.append(f'audio "{name}": DEFAULT=YES needs AUTOSELECT=YES')
        if "LANGUAGE" in entry and not _LANGUAGE_TAG.match(entry["LANGUAGE"]):
            errors.append(f'audio "{name}": LANGUAGE {entry["LANGUAGE"]!r} is not a BCP 47 tag')
        if not entry.get("URI"):
            errors.append(f'audio "{name}": no URI (its sound would be in the variants)')
        if not entry.get("CHANNELS", "").isdigit():
            errors.append(f'audio "{name}": no CHANNELS count')
    return errors


def master_playlist_errors(master: str) -> list[str]:
    """Where a master playlist breaks the audio group rules (RFC 8216 sections 4.3.4.1 and
    4.3.4.2, Apple's HLS authoring specification); empty when it keeps them.

    Each EXT-X-MEDIA:TYPE=AUDIO has a GROUP-ID, a NAME unique in its group, a URI and a
    CHANNELS count, a BCP 47 LANGUAGE if any, and AUTOSELECT=YES if DEFAULT=YES; each group
    has exactly one DEFAULT=YES; when there is audio, every variant names an existing group
    with AUDIO and lists an audio codec in CODECS; no variant names a group that is absent.
    """
    groups: dict[str, list[dict[str, str]]] = {}
    variants: list[dict[str, str]] = []
    for raw in master.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MEDIA:"):
            entry = attributes(line)
            if entry.get("TYPE") == "AUDIO":
                groups.setdefault(entry.get("GROUP-ID", ""), []).append(entry)
        elif line.startswith("#EXT-X-STREAM-INF:"):
            variants.append(attributes(line))
    errors = []
    if not variants:
        errors.append("no EXT-X-STREAM-INF")
    if "" in groups:
        errors.append("an audio EXT-X-MEDIA without GROUP-ID")
    for group, entries in groups.items():
        errors += _group_errors(group, entries)
    for number, variant in enumerate(variants, start=1):
        named = variant.get("AUDIO")
        if named is None:
            if groups:
                errors.append(f"variant {number}: no AUDIO attribute, though there is audio")
            continue
        if named not in groups:
            errors.append(f'variant {number}: AUDIO="{named}" names no audio group')
        if "mp4a." not in variant.get("CODECS", ""):
            errors.append(f"variant {number}: CODECS lists no audio codec for its audio group")
    return errors


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
    discontinuity and its own map follow, rather than a stream that fails to decode. An empty
    slice (the last one, when the pictures end before it) adds nothing.
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
        if not part.segments:  # an empty last slice (SliceSummary.rendition)
            continue
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
