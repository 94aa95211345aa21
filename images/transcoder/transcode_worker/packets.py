"""The source's packets as ffprobe lists them, and keyframes found by reading packets rather
than by seeking (a seek into MPEG-TS lands anywhere in a GOP, and nothing decodes until the
next keyframe, which in a long GOP may be past the end)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcode_worker.ffmpeg import ffprobe_entries

# Demuxers that seek on the file's index to the keyframe at or before the target, so that an
# input seek there is exact with no packets read first (over HTTP each read is a connection).
INDEXED_CONTAINERS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")
FIRST_WINDOW_SECONDS = 4.0
WINDOW_GROWTH = 4  # how fast the search for a keyframe widens


@dataclass(frozen=True)
class Packet:
    stream: int
    decode_time: float  # where a seek must land for this packet to be decoded
    start: float
    end: float
    key: bool


def _seconds(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def parse_packets(entries: Iterable[dict[str, Any]]) -> list[Packet]:
    """ffprobe `packet` entries → Packets; those without a timestamp are left out."""
    packets = []
    for entry in entries:
        start = _seconds(entry.get("pts_time"))
        decode_time = _seconds(entry.get("dts_time"))
        if start is None:
            start = decode_time
        if start is None:
            continue
        duration = _seconds(entry.get("duration_time")) or 0.0
        packets.append(
            Packet(
                stream=int(entry["stream_index"]),
                decode_time=start if decode_time is None else decode_time,
                start=start,
                end=start + duration,
                key="K" in str(entry.get("flags", "")),
            )
        )
    return packets


def last_keyframe_before(packets: Sequence[Packet], stream: int, time: float) -> Packet | None:
    keyframes = [p for p in packets if p.stream == stream and p.key and p.start <= time]
    return max(keyframes, key=lambda p: p.start) if keyframes else None


def read_packets(
    source: Path | str, since: float | None, until: float | None = None, stream: int | None = None
) -> list[Packet]:
    """Packets (of every stream, or of `stream`) from about `since` (None: the start) to
    `until` (None: the end), in the file's own timestamps; as far as the file can be read."""
    interval = "%".join("" if t is None else f"{t:.6f}" for t in (since, until))
    # ffprobe stops at the first packet past `until`: of any stream, unless one is selected.
    selected = [] if stream is None else ["-select_streams", str(stream)]
    entries = ffprobe_entries(
        source,
        [*selected, "-read_intervals", interval,
         "-show_entries", "packet=stream_index,pts_time,dts_time,duration_time,flags"],
    )  # fmt: skip
    return parse_packets(entries.get("packets", []))


def keyframe_at_or_before(
    source: Path | str, stream: int, time: float, start: float
) -> Packet | None:
    """The last keyframe of `stream` at or before `time`, searched in windows that widen back
    to the file's `start`; None when there is none."""
    window = FIRST_WINDOW_SECONDS
    while True:
        since = time - window
        whole = since <= start
        packets = read_packets(source, None if whole else since, time, stream)
        found = last_keyframe_before(packets, stream, time)
        if found is not None or whole:
            return found
        window *= WINDOW_GROWTH


def decode_start(source: Path | str, stream: int, first: float, time: float) -> float:
    """Where decoding must start, in seconds from the file's start `first`, for the picture
    at `time` (seconds from that start) to decode: the keyframe of `stream` at or before it
    (its decode time), found by reading packets; 0 when there is none before it."""
    if time <= 0:
        return 0.0
    keyframe = keyframe_at_or_before(source, stream, first + time, first)
    return 0.0 if keyframe is None else max(0.0, keyframe.decode_time - first)


def seeks_to_keyframes(container: str) -> bool:
    """Whether FFmpeg's input seek into this container lands on a keyframe by itself."""
    return container in INDEXED_CONTAINERS
