"""Interlaced sources are deinterlaced (bwdif, one frame per source frame) and the probe says
so; progressive ones are left alone. Judged on the outputs by FFmpeg's `idet` filter."""

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import m3u8
import pytest
from helpers import blurred_pattern, ffmpeg, make_clip, make_interlaced_clip, run_worker

MPEG4_AVI = ("-c:v", "mpeg4", "-q:v", "3", "-flags", "+ilme+ildct")  # no field order in AVI

SOURCES: dict[str, tuple[str, Callable[[Path], Path]]] = {
    # field_order says tt: the stream is interlaced, the decoder flags every frame
    "tff-h264-mp4": ("tff.mp4", make_interlaced_clip),
    # frames flagged bottom field first in MPEG-TS
    "bff-h264-ts": ("bff.ts", lambda p: make_interlaced_clip(p, top_field_first=False)),
    # field_order unknown: only `idet` on the pictures can tell
    "bff-mpeg4-avi": (
        "bff.avi",
        lambda p: make_interlaced_clip(p, top_field_first=False, encoder=MPEG4_AVI),
    ),
}
RUNGS = "576p:576:2500k,288p:288:600k"  # full height keeps any combing; half height too
SOURCE_FRAMES = 50  # 2 s of 25 frames a second
_IDET = re.compile(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)")
_PSNR = re.compile(r"PSNR .* average:([0-9.]+|inf)")
# Against the pictures the source was woven from, the full-height rung measures 46-48 dB;
# fields taken in the wrong order give 30 dB, no deinterlacing less.
MIN_PSNR_DB = 40


@pytest.fixture(scope="session")
def source_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in made:
            filename, make = SOURCES[case]
            made[case] = make(tmp_path_factory.mktemp(case) / filename)
        return made[case]

    return get


def idet_counts(path: Path) -> tuple[int, int, int]:
    """(TFF, BFF, progressive) frames by `idet`'s multi-frame detection."""
    run = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
         "-vf", "idet", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = _IDET.search(run.stderr)
    assert match, run.stderr
    tff, bff, progressive = (int(n) for n in match.groups())
    return tff, bff, progressive


def psnr_to_the_woven_pictures(rung: Path) -> float:
    """PSNR of the rung's frames against pictures 0, 2, 4… of the pattern the interlaced
    source was woven from: what a right deinterlacer recovers."""
    truth = f"{blurred_pattern('720x576', 50, 2)},framestep=2"
    run = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(rung), "-f", "lavfi", "-i", truth,
         "-filter_complex", "[0:v][1:v]psnr", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = _PSNR.search(run.stderr)
    assert match, run.stderr
    return float(match.group(1))


def video_stream(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=field_order,avg_frame_rate,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    stream: dict[str, str] = json.loads(out)["streams"][0]
    return stream


def joined(rung_dir: Path) -> Path:
    playlist = m3u8.load(str(rung_dir / "index.m3u8"))
    parts = [rung_dir / p.uri for p in playlist.segment_map]
    parts += [rung_dir / s.uri for s in playlist.segments]
    path = rung_dir.parent / f"{rung_dir.name}-joined{parts[-1].suffix}"
    path.write_bytes(b"".join(part.read_bytes() for part in parts))
    return path


def probed_video(source: Path) -> dict[str, object]:
    run = run_worker("probe", str(source))
    assert run.returncode == 0, run.stdout + run.stderr
    video: dict[str, object] = json.loads(run.stdout.splitlines()[-1])["result"]["source"]["video"]
    return video


@pytest.mark.parametrize("case", list(SOURCES))
def test_interlaced_sources_become_progressive_at_their_frame_rate(
    source_of: Callable[[str], Path], tmp_path: Path, case: str
) -> None:
    source = source_of(case)
    tff, bff, _ = idet_counts(source)
    assert tff + bff >= SOURCE_FRAMES - 2  # the source really is combed

    video = probed_video(source)
    assert video["interlaced"] is True
    assert video["frameRate"] == "25/1"

    out = tmp_path / "out"
    run = run_worker("ladder", str(source), str(out), "--renditions", RUNGS)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout.splitlines()[-1])["result"]["renditions"]
    assert [r["name"] for r in results] == ["288p", "576p"]
    for result in results:
        rung = joined(out / result["name"])
        assert idet_counts(rung)[:2] == (0, 0), result["name"]  # no combed frame left
        stream = video_stream(rung)
        assert stream["field_order"] == "progressive"
        assert stream["avg_frame_rate"] == "25/1"  # 25i → 25p: one frame per source frame
        assert int(stream["nb_read_frames"]) == SOURCE_FRAMES
        assert result["frameRate"] == 25
        if result["height"] == 576:  # fields woven back in their own order, nothing combed
            assert psnr_to_the_woven_pictures(rung) >= MIN_PSNR_DB


def unflagged_progressive_avi(path: Path) -> Path:
    """Progressive MPEG-4 in AVI: its field order is unknown, so `idet` has to look."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1,gblur=sigma=1.5",
           "-c:v", "mpeg4", str(path))  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("filename", "make"),
    [
        ("flagged.mp4", lambda p: make_clip(p, size="320x240", seconds=1)),
        ("unflagged.avi", unflagged_progressive_avi),
    ],
)
def test_progressive_sources_are_reported_progressive(
    tmp_path: Path, filename: str, make: Callable[[Path], Path]
) -> None:
    assert probed_video(make(tmp_path / filename))["interlaced"] is False
