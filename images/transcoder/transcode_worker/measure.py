"""Measuring an encoded rung from its files: bandwidths, codecs, picture size."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import m3u8

from transcode_worker.errors import WorkerError
from videotranscode import MEDIA_PLAYLIST, AudioRenditionResult, RenditionResult

_AAC_OBJECT_TYPES = {"LC": 2, "HE-AAC": 5, "HE-AACv2": 29}


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float


@dataclass(frozen=True)
class MediaPlaylist:
    target_duration: int
    segments: list[Segment]
    init_uri: str | None
    ended: bool


def parse_media_playlist(text: str) -> MediaPlaylist:
    """The few tags of a VOD media playlist that measuring needs."""
    # m3u8 takes tens of ms on a 2-hour playlist (bench/playlists.py), once per encoded rung.
    parsed = m3u8.loads(text)
    return MediaPlaylist(
        target_duration=parsed.target_duration or 0,
        segments=[Segment(s.uri, s.duration) for s in parsed.segments],
        init_uri=parsed.segment_map[0].uri if parsed.segment_map else None,
        ended=parsed.is_endlist,
    )


def bandwidths(sizes_and_durations: list[tuple[int, float]]) -> tuple[int, int]:
    """(peak, average) bits per second over segments given as (bytes, seconds)."""
    peak = max(size * 8 / duration for size, duration in sizes_and_durations if duration > 0)
    total_bytes = sum(size for size, _ in sizes_and_durations)
    total_seconds = sum(duration for _, duration in sizes_and_durations)
    return round(peak), round(total_bytes * 8 / total_seconds)


def avc_codec_string(data: bytes) -> str:
    """`avc1.PPCCLL` from the first SPS: in an `avcC` box (fMP4) or an Annex B stream (TS)."""
    box = data.find(b"avcC")
    if box >= 0 and len(data) >= box + 8:
        profile, constraints, level = data[box + 5 : box + 8]
        return f"avc1.{profile:02x}{constraints:02x}{level:02x}"
    start = data.find(b"\x00\x00\x01")
    while 0 <= start < len(data) - 6:
        if data[start + 3] & 0x1F == 7:  # NAL unit type 7: sequence parameter set
            profile, constraints, level = data[start + 4 : start + 7]
            return f"avc1.{profile:02x}{constraints:02x}{level:02x}"
        start = data.find(b"\x00\x00\x01", start + 3)
    raise WorkerError("no H.264 sequence parameter set found in the encoded output")


def _probe_streams(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise WorkerError(f"cannot read the encoded output {path.name}: {result.stderr.strip()}")
    streams: list[dict[str, object]] = json.loads(result.stdout).get("streams", [])
    return streams


def measure_rendition(
    rung_dir: Path,
    *,
    name: str,
    frame_rate: float,
    playlist_key: str,
    playlist_name: str = MEDIA_PLAYLIST,
) -> RenditionResult:
    """The rung's RenditionResult, measured from its playlist and files on disk."""
    playlist = parse_media_playlist((rung_dir / playlist_name).read_text())
    if not playlist.segments or not playlist.ended:
        raise WorkerError(f"the {name} playlist is incomplete")
    sizes = [((rung_dir / s.uri).stat().st_size, s.duration) for s in playlist.segments]
    peak, average = bandwidths(sizes)
    header_file = rung_dir / (playlist.init_uri or playlist.segments[0].uri)
    streams = _probe_streams(header_file)
    video = next(s for s in streams if s.get("codec_type") == "video")
    codecs = [avc_codec_string(header_file.read_bytes()[:1_000_000])]
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is not None:
        codecs.append(f"mp4a.40.{_AAC_OBJECT_TYPES.get(str(audio.get('profile')), 2)}")
    return RenditionResult(
        name=name,
        width=int(str(video["width"])),
        height=int(str(video["height"])),
        frame_rate=round(frame_rate, 3),
        bandwidth=peak,
        average_bandwidth=average,
        codecs=",".join(codecs),
        segment_count=len(playlist.segments),
        duration_seconds=round(sum(s.duration for s in playlist.segments), 3),
        playlist_key=playlist_key,
    )


def measure_audio_rendition(
    rendition_dir: Path,
    *,
    name: str,
    stream: int,
    language: str | None,
    display_name: str,
    default: bool,
    playlist_key: str,
) -> AudioRenditionResult:
    """An audio-only rendition's result, measured from its playlist and files on disk."""
    playlist = parse_media_playlist((rendition_dir / MEDIA_PLAYLIST).read_text())
    if not playlist.segments or not playlist.ended:
        raise WorkerError(f"the {name} playlist is incomplete")
    sizes = [((rendition_dir / s.uri).stat().st_size, s.duration) for s in playlist.segments]
    peak, average = bandwidths(sizes)
    streams = _probe_streams(rendition_dir / (playlist.init_uri or playlist.segments[0].uri))
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise WorkerError(f"the {name} rendition has no audio stream")
    return AudioRenditionResult(
        name=name,
        stream=stream,
        language=language,
        display_name=display_name,
        default=default,
        channels=int(str(audio.get("channels", 0))),
        bandwidth=peak,
        average_bandwidth=average,
        codecs=f"mp4a.40.{_AAC_OBJECT_TYPES.get(str(audio.get('profile')), 2)}",
        segment_count=len(playlist.segments),
        duration_seconds=round(sum(s.duration for s in playlist.segments), 3),
        playlist_key=playlist_key,
    )


def first_picture_time(rung_dir: Path, playlist: MediaPlaylist) -> float | None:
    """The presentation time of the first picture of the playlist's first segment, read as a
    player reads it (after the init section, if any); None when it has no picture."""
    if not playlist.segments:
        return None
    parts = (
        [playlist.init_uri, playlist.segments[0].uri]
        if playlist.init_uri
        else [playlist.segments[0].uri]
    )
    source = "concat:" + "|".join(str(rung_dir / part) for part in parts)
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-select_streams", "v:0",
         "-read_intervals", "%+#1", "-show_entries", "packet=pts_time", source],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise WorkerError(f"cannot read the first picture of {parts[-1]}: {result.stderr.strip()}")
    packets = json.loads(result.stdout or "{}").get("packets", [])
    return float(packets[0]["pts_time"]) if packets else None
