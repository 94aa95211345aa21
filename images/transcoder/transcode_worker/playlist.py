"""The media playlists the worker publishes, put right where FFmpeg gets HLS wrong."""

from pathlib import Path

from transcode_worker.measure import parse_media_playlist
from videotranscode import target_duration

_TARGET_TAG = "#EXT-X-TARGETDURATION:"


def with_target_duration(media_playlist: str) -> str:
    """The playlist with EXT-X-TARGETDURATION computed from its own segment durations.

    FFmpeg 5.1 rounds the longest segment half to even: 0.5 s gets a target of 0 and 4.5 s
    one of 4, both below what RFC 8216 requires. Only that line changes: m3u8's dump would
    also rewrite every other line FFmpeg wrote (`#EXTINF:4.500000,` becomes `#EXTINF:4.5,`).
    """
    segments = parse_media_playlist(media_playlist).segments
    tag = f"{_TARGET_TAG}{target_duration(s.duration for s in segments)}"
    lines = media_playlist.splitlines()
    kept = [line for line in lines if not line.startswith(_TARGET_TAG)]
    # Where FFmpeg wrote it, or right after #EXTM3U.
    at = next((i for i, line in enumerate(lines) if line.startswith(_TARGET_TAG)), 1)
    return "\n".join([*kept[:at], tag, *kept[at:]]) + "\n"


def rewrite_target_duration(path: Path) -> None:
    path.write_text(with_target_duration(path.read_text()))
