"""Time slices of one rung (issue 12), encoded by separate worker runs into one directory
and stitched by the contract: the stitched rung must be the unsliced rung, join for join."""

import json
import os
import subprocess
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import m3u8
import pytest
from helpers import make_clip, run_worker

from videotranscode import SliceResult, stitch_media_playlist, target_duration_errors

SECONDS = 15  # slices of 6, 6 and 3 s
SLICE_SECONDS = 6
RATE = 30
FRAME = 1 / RATE
AAC_FRAME = 1024 / 48000
RUNG = ["--name", "180p", "--height", "180", "--video-bitrate", "400k"]


@dataclass(frozen=True)
class Encoded:
    segment_type: str
    whole: Path  # the unsliced rung's directory
    sliced: Path  # the slices' directory
    slices: list[SliceResult]
    stitched: m3u8.M3U8


def ffprobe_json(target: str, *args: str) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", *args, target],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def with_init(rung_dir: Path, playlist: m3u8.M3U8, uris: list[str]) -> str:
    """The segments `uris` after the playlist's init section, as one input for ffprobe."""
    init = [playlist.segment_map[0].uri] if playlist.segment_map else []
    return "concat:" + "|".join(str(rung_dir / uri) for uri in [*init, *uris])


def packets(target: str, stream: str) -> list[tuple[float, float, bool]]:
    """(pts, end, keyframe) of each packet of `stream` (v:0 or a:0), in presentation order."""
    data = ffprobe_json(target, "-select_streams", stream,
                        "-show_entries", "packet=pts_time,duration_time,flags")  # fmt: skip
    entries = data["packets"]
    assert isinstance(entries, list)
    found = []
    for p in entries:
        start = float(p["pts_time"])
        found.append((start, start + float(p.get("duration_time", 0)), "K" in p["flags"]))
    return sorted(found)


@pytest.fixture(scope="module", params=["fmp4", "mpegts"])
def encoded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    segment_type: str = request.param
    tmp = tmp_path_factory.mktemp(f"slices-{segment_type}")
    source = make_clip(tmp / "source.mp4", size="320x180", rate=RATE, seconds=SECONDS)
    packaging = ["--segment-type", segment_type]
    run = run_worker("rendition", str(source), str(tmp / "whole"), *RUNG, *packaging)
    assert run.returncode == 0, run.stderr
    slices = []
    for index in range(3):
        # As in an Indexed Job: the index from the environment.
        env = {**os.environ, "JOB_COMPLETION_INDEX": str(index)}
        run = run_worker("rendition", str(source), str(tmp / "sliced"), *RUNG, *packaging,
                         "--slice-seconds", str(SLICE_SECONDS), env=env)  # fmt: skip
        assert run.returncode == 0, run.stderr
        done = json.loads(run.stdout.splitlines()[-1])
        assert done["event"] == "done"
        assert len(json.dumps(done)) < 4096
        result_file = Path(done["result"]["resultKey"])
        slices.append(SliceResult.model_validate_json(result_file.read_text()))
    sliced = tmp / "sliced" / "180p"
    (sliced / "index.m3u8").write_text(stitch_media_playlist(slices, slice_count=3))
    stitched = m3u8.load(str(sliced / "index.m3u8"))
    return Encoded(segment_type, tmp / "whole" / "180p", sliced, slices, stitched)


def test_the_stitched_playlist_is_the_whole_rungs(encoded: Encoded) -> None:
    whole = m3u8.load(str(encoded.whole / "index.m3u8"))
    assert [s.uri for s in encoded.stitched.segments] == [s.uri for s in whole.segments]
    assert [s.duration for s in encoded.stitched.segments] == pytest.approx(
        [s.duration for s in whole.segments], abs=0.001
    )
    assert encoded.stitched.is_endlist
    assert target_duration_errors((encoded.sliced / "index.m3u8").read_text()) == []
    if encoded.segment_type == "fmp4":
        # The slices' init sections are byte for byte the same: one EXT-X-MAP serves all.
        assert len({s.init_sha256 for s in encoded.slices}) == 1
        assert len(encoded.stitched.segment_map) == 1
    starts = [s.first_pts_seconds or 0.0 for s in encoded.slices]
    assert None not in [s.first_pts_seconds for s in encoded.slices]  # every slice has pictures
    assert [start - starts[0] for start in starts] == pytest.approx([0, 6, 12], abs=0.001)


def test_every_segment_starts_on_a_keyframe_and_joins_without_a_gap(encoded: Encoded) -> None:
    playlist, rung_dir = encoded.stitched, encoded.sliced
    video_end = audio_end = None
    audio_overlaps = []
    for segment in playlist.segments:
        part = with_init(rung_dir, playlist, [segment.uri])
        video = packets(part, "v:0")
        assert video[0][2], f"{segment.uri} does not start on a keyframe"
        steps = [b[0] - a[0] for a, b in pairwise(video)]
        assert steps == pytest.approx([FRAME] * len(steps), abs=1e-3)
        if video_end is not None:
            assert video[0][0] == pytest.approx(video_end, abs=1e-3), segment.uri
        video_end = video[-1][1]
        audio = packets(part, "a:0")
        if audio_end is not None:
            assert audio[0][0] <= audio_end + 1e-3, f"{segment.uri}: a gap in the sound"
            audio_overlaps.append(round(audio_end - audio[0][0], 4))
        audio_end = audio[-1][1]
    # Every segment here is a join (one segment per slice). Each slice brings its own AAC
    # priming frame (1024 samples) and the previous slice's last frame runs past the cut:
    # measured 37 ms of overlapping sound per join (48 kHz). Issue 12 item 3 (audio as its own
    # rendition, encoded once) removes it; until then it is bounded here.
    assert len(audio_overlaps) == 2
    assert all(0 < overlap <= 2 * AAC_FRAME for overlap in audio_overlaps), audio_overlaps


def test_the_stitched_rung_has_every_frame_once(encoded: Encoded) -> None:
    whole = m3u8.load(str(encoded.whole / "index.m3u8"))
    all_of = [s.uri for s in whole.segments]
    expected = packets(with_init(encoded.whole, whole, all_of), "v:0")
    found = packets(with_init(encoded.sliced, encoded.stitched, all_of), "v:0")
    assert len(found) == len(expected) == SECONDS * RATE
    offset = found[0][0] - expected[0][0]
    assert [round(p[0] - offset, 3) for p in found] == [round(p[0], 3) for p in expected]
    keyframes = [round(p[0] - found[0][0], 3) for p in found if p[2]]
    assert keyframes == [float(t) for t in range(0, SECONDS, 2)]  # the rung's GOP grid


def frame_ssim(rung_dir: Path, playlist: m3u8.M3U8, source: Path) -> list[float]:
    """SSIM (all planes) of each frame of the rung against the source."""
    stream = with_init(rung_dir, playlist, [s.uri for s in playlist.segments])
    stats = rung_dir / "ssim.txt"
    graph = ("[0:v]setpts=PTS-STARTPTS,scale=320:180[a];[1:v]setpts=PTS-STARTPTS[b];"
             f"[a][b]ssim=stats_file={stats}")  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", stream,
         "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
        check=True,
    )  # fmt: skip
    return [float(line.split("All:")[1].split()[0]) for line in stats.read_text().splitlines()]


def join_drop(ssim: list[float], join: int) -> float:
    """How far the worst frame within a second of the join falls below its neighbours: the
    frames at the same place one and two GOPs earlier and later (so the GOP's own rhythm,
    a sharp keyframe and softer frames after it, is no drop). As bench/slicing.py measures."""
    gop, worst = 2 * RATE, -1.0
    for frame in range(join - RATE, join + RATE):
        neighbours = [ssim[i] for m in (-2, -1, 1, 2) if 0 <= (i := frame + m * gop) < len(ssim)]
        worst = max(worst, sum(neighbours) / len(neighbours) - ssim[frame])
    return worst


def test_slicing_costs_no_quality(encoded: Encoded) -> None:
    # Measured (180p, 400 kb/s): without the warm-up each slice's first second was up to 0.019
    # SSIM below its neighbours and the whole rung 0.0016 below the unsliced one (x264's rate
    # control starting cold); with it 0.004 and 0.0004.
    source = encoded.whole.parent.parent / "source.mp4"
    whole = frame_ssim(encoded.whole, m3u8.load(str(encoded.whole / "index.m3u8")), source)
    stitched = frame_ssim(encoded.sliced, encoded.stitched, source)
    assert len(stitched) == len(whole) == SECONDS * RATE
    assert sum(stitched) / len(stitched) >= sum(whole) / len(whole) - 0.001
    joins = [index * SLICE_SECONDS * RATE for index in (1, 2)]
    drops = [round(join_drop(stitched, join), 4) for join in joins]
    assert all(drop <= 0.01 for drop in drops), drops  # issue 12's limit


def test_a_slice_past_the_end_is_bad_input(encoded: Encoded, tmp_path: Path) -> None:
    source = encoded.whole.parent.parent / "source.mp4"
    run = run_worker("rendition", str(source), str(tmp_path / "out"), *RUNG,
                     "--slice-seconds", "6", "--slice-index", "3")  # fmt: skip
    assert run.returncode == 2
    error = json.loads(run.stdout.splitlines()[-1])
    assert error["reason"] == "BadInput"
    assert (
        "slice 3 starts at 18 s, at or after the end of the 15 s video (3 slices of 6 s)"
        in (error["message"])
    )
    assert not (tmp_path / "out").exists()
