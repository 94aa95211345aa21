"""Is the whole source there? A check of its last seconds that does not depend on where its
keyframes fall, and reads only the end of the file, so it stays cheap for long sources.

Two questions, answered by ffprobe reading the tail (never the whole file unless it is short):

1. Do the packets reach the end the container declares? A file cut short often keeps what
   declares its length (an MP4 index written first, Matroska's duration) but loses the packets
   at its end.
2. Do the video packets of the tail decode? Decoding starts at the last keyframe before the
   tail, found by reading packets (seeking alone lands mid-GOP in MPEG-TS), so a long or open
   GOP decodes as a player would decode it, while a file padded with garbage after a cut stops
   decoding where the garbage starts.

An MPEG-TS cut short is a shorter valid stream: nothing in it says that more was meant.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcode_worker.errors import BadInputError
from transcode_worker.ffmpeg import ffprobe_entries
from transcode_worker.packets import Packet, keyframe_at_or_before, read_packets

TAIL_SECONDS = 2.0  # the stretch at the end that must be there and decode
# How far before the declared end the data may stop: whole files' container durations and
# packet timestamps differ by a frame or two (0.03 s seen), the last frames may drop.
END_SLACK_SECONDS = 0.25


@dataclass(frozen=True)
class Span:
    """The source's timeline as its container declares it, in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def declared_span(probe: dict[str, Any]) -> Span:
    fmt = probe.get("format", {})
    start = float(fmt.get("start_time") or 0)
    return Span(start, start + float(fmt.get("duration") or 0))


def media_streams(probe: dict[str, Any]) -> set[int]:
    """Audio and video streams: subtitle, data and timecode tracks say nothing about the end."""
    return {
        int(stream["index"])
        for stream in probe.get("streams", [])
        if stream.get("codec_type") in ("audio", "video")
    }


def data_end(packets: Sequence[Packet], streams: set[int]) -> float | None:
    ends = [packet.end for packet in packets if packet.stream in streams]
    return max(ends) if ends else None


def decoded_end(frames: Iterable[dict[str, Any]]) -> float | None:
    """Where the last decoded picture ends, from ffprobe `frame` entries."""
    ends = []
    for frame in frames:
        start = frame.get("best_effort_timestamp_time")
        if start is not None:
            duration = frame.get("duration_time", frame.get("pkt_duration_time"))  # 6.0 renamed it
            ends.append(float(start) + float(duration or 0))
    return max(ends) if ends else None


def _decoded_end(source: Path | str, video: int, anchor: Packet | None) -> float | None:
    interval = [] if anchor is None else ["-read_intervals", f"{anchor.decode_time:.6f}%"]
    entries = ffprobe_entries(
        source,
        [*interval, "-select_streams", str(video),
         "-show_entries", "frame=best_effort_timestamp_time,pkt_duration_time,duration_time"],
    )  # fmt: skip
    return decoded_end(entries.get("frames", []))


def check_source_is_whole(source: Path | str, probe: dict[str, Any], video: int) -> float:
    """How many seconds before the declared end the video's pictures stop (audio may last
    longer); BadInputError when the source's data stops before that end, or its last seconds
    of video do not decode."""
    span = declared_span(probe)
    # Decoding starts at the last keyframe before the tail (none: at the start), and the
    # packets are read from there too, so both cover the same stretch.
    anchor = keyframe_at_or_before(source, video, span.end - TAIL_SECONDS, span.start)
    packets = read_packets(source, None if anchor is None else anchor.decode_time)

    def at(time: float | None) -> str:
        return f"{max(0.0, (time or span.start) - span.start):.1f} s of {span.duration:.1f} s"

    present = data_end(packets, media_streams(probe) | {video})
    if present is None or present < span.end - END_SLACK_SECONDS:
        cause = "an upload or copy cut short?"
        raise BadInputError(f"the video is truncated: its data ends at {at(present)} ({cause})")
    video_present = data_end(packets, {video})
    decoded = _decoded_end(source, video, anchor)
    if decoded is None or video_present is None or decoded < video_present - END_SLACK_SECONDS:
        raise BadInputError(f"the video is corrupt: its pictures stop decoding at {at(decoded)}")
    return max(0.0, span.end - decoded)
