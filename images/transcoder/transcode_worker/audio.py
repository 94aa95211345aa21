"""The FFmpeg command for one audio-only rendition (pure functions).

One audio stream of the source, encoded whole (never sliced: slicing AAC leaves a priming gap
or overlap at every join) to AAC-LC at 48 kHz, mono or stereo, and packaged as HLS beside the
video rungs. Its timestamps are on the video rungs' timeline (source time +
`TIMESTAMP_HEADROOM`), so players keep the separate playlists in sync.

Sound that starts after the pictures (phone recordings often start the audio late) is preceded
by silence from the start of the source, gaps inside it are filled with silence, and sound
that stops early is followed by silence to the end: the rendition always spans the whole
source, segment for segment beside the video.

The encoder's priming frame comes first, and FFmpeg's HLS muxer counts segment times from it,
so the audio's cuts fall up to one AAC frame (21 ms) before the video's. Where the source ends
just past a boundary, the sound after that cut would make a last segment of one or two
frames; the sound is then ended at the cut instead (at most 43 ms lost, see `sound_seconds`).
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from transcode_worker.encode import INIT_SEGMENT, TIMESTAMP_HEADROOM
from transcode_worker.probe import ProbedSource
from videotranscode import AUDIO_SAMPLE_RATE, MEDIA_PLAYLIST, output_channels


@dataclass(frozen=True)
class AudioEncoding:
    stream: int  # among the source's audio streams (FFmpeg's a:N)
    bitrate: int  # bits/s
    segment_seconds: int = 6
    segment_type: Literal["fmp4", "mpegts"] = "fmp4"

    @property
    def segment_extension(self) -> str:
        return "m4s" if self.segment_type == "fmp4" else "ts"


AAC_FRAME_SAMPLES = 1024
SHORTEST_LAST_SEGMENT_FRAMES = 3  # a last segment of fewer frames is not made


def sound_seconds(duration_seconds: float, segment_seconds: int) -> float:
    """How many seconds of sound the rendition carries: the source's duration, unless that
    ends less than three AAC frames past a segment cut, which then ends it."""
    frame = AAC_FRAME_SAMPLES / AUDIO_SAMPLE_RATE
    # Cut k comes before packet ceil(k·S/frame); the priming packet 0 carries no sound, so
    # the sound at that cut is (that - 1) frames in.
    cut = math.floor(duration_seconds / segment_seconds) + 1  # cuts come a little early
    while cut > 0:
        at = (math.ceil(cut * segment_seconds / frame - 1e-9) - 1) * frame
        if at < duration_seconds:
            tail = duration_seconds - at
            return at if tail < SHORTEST_LAST_SEGMENT_FRAMES * frame - 1e-9 else duration_seconds
        cut -= 1
    return duration_seconds


def audio_filters(seconds: float) -> str:
    """Exactly `seconds` of sound from the start of the source: silence where it starts late,
    has gaps or stops early (see the module's doc)."""
    return f"aresample=async=1:first_pts=0,apad=whole_dur={seconds:.6f},atrim=end={seconds:.6f}"


def build_audio_args(
    source: ProbedSource, encoding: AudioEncoding, rendition_dir: Path
) -> list[str]:
    """FFmpeg arguments that write the rendition under `rendition_dir`: an EVENT playlist,
    rewritten after each segment (so it can be published as it grows: transcode_worker.
    growing), which ends with EXT-X-ENDLIST."""
    track = source.info.audio_streams[encoding.stream]
    hls = [
        "-f", "hls", "-hls_time", str(encoding.segment_seconds),
        "-hls_playlist_type", "event", "-hls_flags", "independent_segments",
        "-hls_segment_type", encoding.segment_type,
        "-hls_segment_filename",
        str(rendition_dir / f"seg_%05d.{encoding.segment_extension}"),
    ]  # fmt: skip
    if encoding.segment_type == "fmp4":
        # As for video: each fragment's tfdt carries the true time.
        hls += ["-hls_fmp4_init_filename", INIT_SEGMENT,
                "-hls_segment_options", "movflags=+frag_discont"]  # fmt: skip
    return [
        *source.input_args(), "-map", f"0:a:{encoding.stream}", "-vn", "-sn", "-dn",
        "-af", audio_filters(sound_seconds(source.info.duration_seconds,
                                           encoding.segment_seconds)),
        "-c:a", "aac", "-b:a", str(encoding.bitrate),
        "-ac", str(output_channels(track.channels)), "-ar", str(AUDIO_SAMPLE_RATE),
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-output_ts_offset", f"{float(TIMESTAMP_HEADROOM):.6f}",
        *hls, str(rendition_dir / MEDIA_PLAYLIST),
    ]  # fmt: skip
