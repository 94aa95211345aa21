"""Interlaced or progressive? What the stream's field order says, else what FFmpeg's `idet`
filter measures on the first pictures. Interlaced video is deinterlaced with `bwdif`.

Why `bwdif` in `send_frame` mode: it is FFmpeg's best-regarded software deinterlacer (yadif's
motion-adaptive approach with w3fdif's interpolation), and one frame out per frame in keeps the
source's frame rate (25i → 25p), so GOPs, segments and bitrates stay as planned and no rung
doubles its frame count. `send_field` (50p) would be smoother but doubles the encoding work.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from transcode_worker.ffmpeg import ffmpeg, input_options

IDET_SAMPLE_FRAMES = 250  # 10 s at 25 frames a second, from the start (seeking may decode nothing)
_INTERLACED_ORDERS = ("tt", "bb", "tb", "bt")
_IDET_SUMMARY = re.compile(
    r"Multi frame detection: TFF:\s*(\d+)\s+BFF:\s*(\d+)\s+Progressive:\s*(\d+)"
    r"\s+Undetermined:\s*(\d+)"
)


@dataclass(frozen=True)
class Scan:
    """How the source's pictures are scanned, as far as deinterlacing needs to know."""

    interlaced: bool
    # Which field is earlier in time: measured by `idet`, or "auto": each decoded frame's own
    # flag, which is right where the stream-level field order and the frames disagree.
    field_first: Literal["auto", "tff", "bff"] = "auto"


PROGRESSIVE = Scan(interlaced=False)


@dataclass(frozen=True)
class IdetCounts:
    tff: int
    bff: int
    progressive: int
    undetermined: int


def scan_from_field_order(field_order: str | None) -> Scan | None:
    """What ffprobe's `field_order` says; None when it says nothing (`unknown`, absent)."""
    if field_order == "progressive":
        return PROGRESSIVE
    if field_order in _INTERLACED_ORDERS:
        return Scan(interlaced=True)
    return None


def parse_idet(log: str) -> IdetCounts | None:
    """The multi-frame summary `idet` logs at the end, which smooths single-frame noise."""
    match = _IDET_SUMMARY.search(log)
    if match is None:
        return None
    tff, bff, progressive, undetermined = (int(n) for n in match.groups())
    return IdetCounts(tff, bff, progressive, undetermined)


def scan_from_idet(counts: IdetCounts | None) -> Scan:
    """Interlaced when more pictures look interlaced than progressive; pictures without
    motion (undetermined) say nothing, and nothing measured means progressive."""
    if counts is None or counts.tff + counts.bff <= counts.progressive:
        return PROGRESSIVE
    return Scan(interlaced=True, field_first="tff" if counts.tff >= counts.bff else "bff")


def detect_scan(source: Path | str, video_index: int, field_order: str | None) -> Scan:
    known = scan_from_field_order(field_order)
    if known is not None:
        return known
    measured = ffmpeg(
        [*input_options(source), "-i", str(source), "-map", f"0:{video_index}", "-vf", "idet",
         "-frames:v", str(IDET_SAMPLE_FRAMES), "-f", "null", "-"],
        loglevel="info",  # where `idet` logs its summary
    )  # fmt: skip
    return scan_from_idet(parse_idet(measured.stderr))


def deinterlace_filter(scan: Scan) -> str | None:
    """The filter that makes the source's frames progressive, or None when they are.

    Every frame is deinterlaced (`deint=all`), not only those flagged interlaced: some
    decoders flag none (raw video in MOV, say) and a measured source may be unflagged.
    """
    if not scan.interlaced:
        return None
    return f"bwdif=mode=send_frame:parity={scan.field_first}:deint=all"
