"""Every media playlist the worker publishes keeps RFC 8216 §4.3.3.1: each EXTINF rounded to
the nearest integer is at most EXT-X-TARGETDURATION, for segment lengths FFmpeg rounds down
(x.5 s: FFmpeg 5.1 rounds half to even, so 0.5 s got a target of 0 and 4.5 s one of 4)."""

from collections.abc import Callable
from pathlib import Path

import m3u8
import pytest
from helpers import make_clip, run_worker

from transcode_worker.playlist import with_target_duration
from videotranscode import target_duration_errors

TWO_RUNGS = "64p:64:100k,90p:90:150k"


@pytest.fixture(scope="session")
def clip_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[float, bool], Path]:
    """`clip_of(seconds, audio)`: a tiny 30 fps clip (x.5 s is whole frames), made once."""
    made: dict[tuple[float, bool], Path] = {}

    def get(seconds: float, audio: bool) -> Path:
        if (seconds, audio) not in made:
            folder = tmp_path_factory.mktemp(f"clip-{seconds:g}s")
            made[seconds, audio] = make_clip(
                folder / "a.mp4", size="160x90", rate=30, seconds=seconds, audio=audio
            )
        return made[seconds, audio]

    return get


def published_media_playlists(out: Path) -> list[Path]:
    playlists = sorted(out.rglob("*.m3u8"))
    media = [p for p in playlists if not m3u8.loads(p.read_text()).is_variant]
    assert media, f"no media playlist under {out}"
    return media


# Video only where a segment must last exactly x.5 s: AAC's last frame runs a little over.
@pytest.mark.parametrize(
    ("seconds", "audio", "segment_seconds", "gop_seconds", "segment_type", "longest"),
    [
        (0.5, False, 6, 2, "fmp4", 0.5),  # the shortest source accepted: one 0.5 s segment
        (4.5, False, 6, 2, "mpegts", 4.5),  # one segment of x.5 s
        (2.5, False, 4, 2, "fmp4", 2.5),
        (10.5, False, 6, 2, "fmp4", 6.0),  # 6 + 4.5: the last segment lasts x.5 s
        (10.5, True, 6, 2, "mpegts", 6.0),
        (7.5, True, 2, 1, "fmp4", 2.0),  # 2 + 2 + 2 + 1.5
    ],
)
def test_every_published_media_playlist_keeps_the_target_duration_rule(
    clip_of: Callable[[float, bool], Path],
    tmp_path: Path,
    seconds: float,
    audio: bool,
    segment_seconds: int,
    gop_seconds: int,
    segment_type: str,
    longest: float,
) -> None:
    out = tmp_path / "out"
    run = run_worker(
        "ladder", str(clip_of(seconds, audio)), str(out), "--renditions", TWO_RUNGS,
        "--segment-seconds", str(segment_seconds), "--gop-seconds", str(gop_seconds),
        "--segment-type", segment_type,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    playlists = published_media_playlists(out)
    assert len(playlists) == 2 + audio  # the video rungs and, with sound, its audio rendition
    for path in playlists:
        text = path.read_text()
        assert target_duration_errors(text) == [], f"{path.relative_to(out)}:\n{text}"
        parsed = m3u8.loads(text)
        # Audio segments end on AAC frames (1024 samples at 48 kHz): up to one past the time.
        slack = 0.022 if path.parent.name.startswith("audio-") else 0.01
        assert max(s.duration for s in parsed.segments) == pytest.approx(longest, abs=slack)
        assert parsed.target_duration == max(1, int(longest + 0.5))  # the least that is valid


FFMPEG_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:4.500000,
seg_00000.ts
#EXT-X-ENDLIST
"""


def test_the_target_is_rewritten_in_place_or_added() -> None:
    fixed = with_target_duration(FFMPEG_PLAYLIST)
    assert fixed == FFMPEG_PLAYLIST.replace("TARGETDURATION:4", "TARGETDURATION:5")
    without = FFMPEG_PLAYLIST.replace("#EXT-X-TARGETDURATION:4\n", "")
    assert with_target_duration(without).splitlines()[:2] == ["#EXTM3U", "#EXT-X-TARGETDURATION:5"]
    assert target_duration_errors(with_target_duration(without)) == []
