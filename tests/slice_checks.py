"""Time slices of one rung (issue 12) encoded by separate worker runs and stitched by the
contract, and the checks that the stitched rung is the unsliced rung, join for join.

Shared by tests/worker/test_slices.py and tests/worker/test_slices_awkward.py.
"""

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import m3u8
import pytest
from helpers import run_worker

from videotranscode import SliceResult, stitch_media_playlist, target_duration_errors


@dataclass(frozen=True)
class Packet:
    pts: float
    end: float
    keyframe: bool


@dataclass(frozen=True)
class Encoded:
    """One rung of a source, encoded whole and in slices, and its slices stitched."""

    source: Path
    whole: Path  # the unsliced rung's directory
    sliced: Path  # the slices' directory (their segments, inits and stitched index.m3u8)
    slices: list[SliceResult]
    stitched: m3u8.M3U8

    @property
    def whole_playlist(self) -> m3u8.M3U8:
        return m3u8.load(str(self.whole / "index.m3u8"))

    def whole_packets(self) -> list[Packet]:
        playlist = self.whole_playlist
        return packets(with_init(self.whole, playlist, uris(playlist)), "v:0")

    def stitched_packets(self) -> list[Packet]:
        return packets(with_init(self.sliced, self.stitched, uris(self.stitched)), "v:0")


def ffprobe_json(target: str, *args: str) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", *args, target],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def uris(playlist: m3u8.M3U8) -> list[str]:
    return [s.uri for s in playlist.segments]


def with_init(rung_dir: Path, playlist: m3u8.M3U8, segment_uris: list[str]) -> str:
    """The segments after the playlist's init section, as one input for ffprobe/ffmpeg."""
    init = [playlist.segment_map[0].uri] if playlist.segment_map else []
    return "concat:" + "|".join(str(rung_dir / uri) for uri in [*init, *segment_uris])


def packets(target: str, stream: str) -> list[Packet]:
    """The packets of `stream` (v:0 or a:0), in presentation order."""
    data = ffprobe_json(target, "-select_streams", stream,
                        "-show_entries", "packet=pts_time,duration_time,flags")  # fmt: skip
    entries = data["packets"]
    assert isinstance(entries, list)
    found = []
    for p in entries:
        start = float(p["pts_time"])
        found.append(Packet(start, start + float(p.get("duration_time", 0)), "K" in p["flags"]))
    return sorted(found, key=lambda p: p.pts)


def encode_sliced(
    source: Path, out: Path, rung: list[str], *, slice_seconds: int, slice_count: int,
    packaging: tuple[str, ...] = (),
) -> Encoded:  # fmt: skip
    """The rung `rung` (worker arguments) of `source` encoded whole and in `slice_count`
    slices, each by its own worker process as in an Indexed Job, and the slices stitched."""

    def slice_run(index: int) -> SliceResult:
        env = {**os.environ, "JOB_COMPLETION_INDEX": str(index)}
        run = run_worker("rendition", str(source), str(out / "sliced"), *rung, *packaging,
                         "--slice-seconds", str(slice_seconds), env=env)  # fmt: skip
        assert run.returncode == 0, f"slice {index}: {run.stdout}{run.stderr}"
        done = json.loads(run.stdout.splitlines()[-1])
        assert done["event"] == "done", done
        assert len(json.dumps(done)) < 4096  # fits a termination message
        return SliceResult.model_validate_json(Path(done["result"]["resultKey"]).read_text())

    # Two at a time, as pods on two nodes would run them.
    with ThreadPoolExecutor(2) as pool:
        sliced_runs = pool.map(slice_run, range(slice_count))
        run = run_worker("rendition", str(source), str(out / "whole"), *rung, *packaging)
        slices = list(sliced_runs)
    assert run.returncode == 0, run.stdout + run.stderr
    name = rung[rung.index("--name") + 1]
    whole, sliced = out / "whole" / name, out / "sliced" / name
    (sliced / "index.m3u8").write_text(stitch_media_playlist(slices, slice_count=slice_count))
    stitched = m3u8.load(str(sliced / "index.m3u8"))
    return Encoded(source, whole, sliced, slices, stitched)


def check_playlist_is_the_whole_rungs(encoded: Encoded, slice_starts: list[float]) -> None:
    """Same segments, same durations, one init section, slices where they belong."""
    whole = encoded.whole_playlist
    assert uris(encoded.stitched) == uris(whole)
    assert [s.duration for s in encoded.stitched.segments] == pytest.approx(
        [s.duration for s in whole.segments], abs=0.001
    )
    assert encoded.stitched.is_endlist
    assert target_duration_errors((encoded.sliced / "index.m3u8").read_text()) == []
    # Only a last slice may be empty (the sound outlasting the pictures into it).
    pictured = [s for s in encoded.slices if s.segments]
    assert encoded.slices[: len(pictured)] == pictured
    if pictured[0].init_uri is not None:
        # The slices' init sections are byte for byte the same: one EXT-X-MAP serves all.
        assert len({s.init_sha256 for s in pictured}) == 1
        assert len(encoded.stitched.segment_map) == 1
    starts = [s.first_pts_seconds for s in pictured]
    assert None not in starts
    first = pictured[0].first_pts_seconds or 0.0
    assert [(s or 0.0) - first for s in starts] == pytest.approx(
        slice_starts[: len(pictured)], abs=0.001
    )


def check_segments_join(encoded: Encoded, frame: float) -> None:
    """Every segment starts on a keyframe, frames step by `frame`, no gap or overlap."""
    playlist, rung_dir = encoded.stitched, encoded.sliced
    video_end = None
    for segment in playlist.segments:
        video = packets(with_init(rung_dir, playlist, [segment.uri]), "v:0")
        assert video[0].keyframe, f"{segment.uri} does not start on a keyframe"
        steps = [b.pts - a.pts for a, b in pairwise(video)]
        assert steps == pytest.approx([frame] * len(steps), abs=1e-3), segment.uri
        if video_end is not None:
            assert video[0].pts == pytest.approx(video_end, abs=1e-3), segment.uri
        video_end = video[-1].end


def check_every_frame_once(encoded: Encoded, frames: int | None = None) -> list[Packet]:
    """The stitched rung has the unsliced rung's frames at the same times (and `frames` of
    them, when given); returns the stitched rung's packets."""
    expected, found = encoded.whole_packets(), encoded.stitched_packets()
    if frames is not None:
        assert len(expected) == frames
    assert len(found) == len(expected)
    offset = found[0].pts - expected[0].pts
    assert [p.pts - offset for p in found] == pytest.approx([p.pts for p in expected], abs=5e-4)
    return found


def ssim(rung_dir: Path, playlist: m3u8.M3U8, reference: Path, size: str) -> float:
    """SSIM of the rung's pictures against `reference`'s, scaled to `size`, frame by frame."""
    stream = with_init(rung_dir, playlist, uris(playlist))
    graph = (f"[0:v]setpts=PTS-STARTPTS,scale={size}[a];[1:v]setpts=PTS-STARTPTS,scale={size}[b];"
             "[a][b]ssim=stats_file=-")  # fmt: skip
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", stream, "-i", str(reference),
         "-lavfi", graph, "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(line for line in out.stderr.splitlines() if "SSIM Y:" in line)
    return float(line.split("All:")[1].split()[0])


def check_slicing_costs_no_quality(encoded: Encoded, reference: Path, size: str) -> None:
    """The stitched rung is as close to `reference` (e.g. the source) as the unsliced rung."""
    whole = ssim(encoded.whole, encoded.whole_playlist, reference, size)
    stitched = ssim(encoded.sliced, encoded.stitched, reference, size)
    assert stitched >= whole - 0.002, (stitched, whole)
