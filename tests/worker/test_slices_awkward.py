"""Time slices of awkward sources (issue 12): interlaced, rotated, variable frame rate, MPEG-TS
with a non-zero start, long GOP, odd durations, 29.97 and 25 fps. Each source is encoded
whole and in slices by separate worker runs; the stitched rung must be the unsliced rung,
join for join (the checks are in tests/slice_checks.py)."""

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from helpers import ffmpeg, make_clip, make_interlaced_clip
from slice_checks import (
    Encoded,
    check_every_frame_once,
    check_playlist_is_the_whole_rungs,
    check_segments_join,
    check_slicing_costs_no_quality,
    encode_sliced,
    ffprobe_json,
    with_init,
)

from transcode_worker.encode import Packaging
from transcode_worker.probe import probe_source
from transcode_worker.slicing import slice_grid
from videotranscode.slicing import output_frame_rate

SLICE_SECONDS = 2  # one 2 s segment of one 2 s GOP per slice: every segment is a join
PACKAGING = ("--segment-seconds", "2", "--gop-seconds", "2")
RUNG = ["--name", "120p", "--height", "120", "--video-bitrate", "500k"]
SIZE = "320x180"
_IDET = re.compile(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)")


@dataclass(frozen=True)
class Case:
    filename: str
    make: Callable[[Path], object]
    rate: Fraction | None  # the rung's output frame rate (None: the probe's, for VFR)
    slices: int  # how many slices cover the source
    frames: int | None = None  # the source's pictures (None: as many as the unsliced rung)
    reference_size: str = "160x90"  # where the SSIM against the source is measured


def rotated_phone_clip(path: Path) -> None:
    """A landscape-coded clip shown upright (display matrix 90°), as phones record."""
    plain = make_clip(path.with_name("landscape.mp4"), size=SIZE, seconds=6)
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))


def vfr_phone_clip(path: Path) -> None:
    """A phone's variable frame rate: 30 fps nominal, every 10th picture dropped (low light),
    the others a few ms early or late, stored with their own timestamps."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=30:duration=6",
           "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=6",
           "-vf", r"select='not(eq(mod(n\,10)\,5))',setpts='PTS+0.004/TB*sin(N)'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))  # fmt: skip


def broadcast_ts(offset: float | None, gop: int = 30) -> Callable[[Path], object]:
    """MPEG-TS as broadcast: a keyframe every `gop` frames, timestamps from the muxer's 1.4 s
    (or from `offset` seconds)."""
    shift = () if offset is None else ("-output_ts_offset", str(offset))
    return lambda path: make_clip(path, size=SIZE, seconds=6, extra=("-g", str(gop), *shift))


CASES: dict[str, Case] = {
    # 25i, top field first: deinterlaced to 25p frame by frame (bwdif send_frame)
    "interlaced-tff": Case(
        "tff.mp4",
        lambda p: make_interlaced_clip(p, size="352x288", seconds=6),
        Fraction(25),
        3,
        frames=150,
        reference_size="176x144",
    ),
    "rotated-90": Case(
        "rotated.mp4", rotated_phone_clip, Fraction(30), 3, frames=180, reference_size="90x160"
    ),
    # 162 pictures in 6 s: 27.15 fps on average (jitter included), the rung's constant rate.
    # Slices are counted on the container's duration, the sound's end: the pictures end 33 ms
    # earlier, with the 3rd slice, so the 4th has no picture (an empty result, exit 0).
    "vfr-phone": Case("vfr.mp4", vfr_phone_clip, None, 4),
    "mpegts-1.4s-start": Case(
        "broadcast.ts",
        broadcast_ts(None),
        Fraction(30),
        4,  # the audio starts 21 ms before the pictures: the unsliced rung has a 4th segment
    ),
    "mpegts-10s-offset": Case(
        "offset.ts",
        broadcast_ts(10),
        Fraction(30),
        4,  # the audio starts 21 ms before the pictures: the unsliced rung has a 4th segment
    ),
    # one keyframe in the whole stream: an input seek would land mid-GOP and decode nothing;
    # every slice decodes from that keyframe (found by reading packets) and trims exactly
    "mpegts-long-gop": Case(
        "long_gop.ts",
        broadcast_ts(None, gop=300),
        Fraction(30),
        4,  # the audio starts 21 ms before the pictures: the last slice is one frame
    ),
    # one GOP of 10 s at 30 fps (one keyframe in the whole source): every slice decodes from 0
    "long-gop": Case(
        "long_gop.mp4",
        lambda p: make_clip(
            p, size=SIZE, seconds=6, extra=("-g", "300", "-keyint_min", "300", "-sc_threshold", "0")
        ),
        Fraction(30),
        3,
        frames=180,
    ),
    # 5.5 s: the last slice is 1.5 s
    "5.5s": Case(
        "odd.mp4", lambda p: make_clip(p, size=SIZE, seconds=5.5), Fraction(30), 3, frames=165
    ),
    # 2.1 s: the last slice is 3 frames
    "2.1s": Case(
        "short.mp4", lambda p: make_clip(p, size=SIZE, seconds=2.1), Fraction(30), 2, frames=63
    ),
    # 61 frames: the last slice is 1 frame
    "2.033s": Case(
        "one_more.mp4",
        lambda p: make_clip(p, size=SIZE, seconds=2.0333),
        Fraction(30),
        2,
        frames=61,
    ),
    "29.97fps": Case(
        "ntsc.mp4",
        lambda p: make_clip(p, size=SIZE, seconds=6, rate="30000/1001"),  # type: ignore[arg-type]
        Fraction(30000, 1001),
        3,
        frames=180,
    ),
    "25fps": Case(
        "pal.mp4",
        lambda p: make_clip(p, size=SIZE, rate=25, seconds=6),
        Fraction(25),
        3,
        frames=150,
    ),
}


NAMES = list(CASES)


def rate_of(case: Case, done: Encoded) -> Fraction:
    if case.rate is not None:
        return case.rate
    first = done.slices[0].rendition
    assert first is not None
    return Fraction(first.frame_rate).limit_denominator(1000)


@pytest.fixture(scope="module")
def source_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            case = CASES[name]
            path = tmp_path_factory.mktemp(f"awkward-{name}") / case.filename
            case.make(path)
            made[name] = path
        return made[name]

    return get


Encodings = Callable[[str], tuple[Case, Encoded]]


@pytest.fixture(scope="module")
def encoding_of(source_of: Callable[[str], Path]) -> Encodings:
    made: dict[str, tuple[Case, Encoded] | AssertionError] = {}

    def get(name: str) -> tuple[Case, Encoded]:
        if name not in made:
            case, source = CASES[name], source_of(name)
            try:
                made[name] = case, encode_sliced(
                    source, source.parent, RUNG, slice_seconds=SLICE_SECONDS,
                    slice_count=case.slices, packaging=PACKAGING,
                )  # fmt: skip
            except AssertionError as failed:  # once: every check of the case reports it
                made[name] = failed
        done = made[name]
        if isinstance(done, AssertionError):
            raise done
        return done

    return get


@pytest.mark.parametrize("name", NAMES)
def test_the_worker_counts_the_slices_that_cover_the_source(
    name: str, source_of: Callable[[str], Path]
) -> None:
    case = CASES[name]
    probed = probe_source(source_of(name), min_duration=0.5, max_duration=3600)
    rate = output_frame_rate(Fraction(probed.info.video.frame_rate))
    assert case.rate is None or rate == case.rate
    grid = slice_grid(SLICE_SECONDS, Packaging(2, 2), rate)
    # The operator counts with the same contract function on the same probed duration.
    assert grid.count(probed.info.duration_seconds) == case.slices


@pytest.mark.parametrize("name", NAMES)
def test_the_stitched_playlist_is_the_unsliced_rungs(name: str, encoding_of: Encodings) -> None:
    case, done = encoding_of(name)
    rate = rate_of(case, done)
    length = float(round(rate * SLICE_SECONDS) / rate)
    check_playlist_is_the_whole_rungs(done, [i * length for i in range(case.slices)])


@pytest.mark.parametrize("name", NAMES)
def test_every_segment_starts_on_a_keyframe_and_joins_without_a_gap(
    name: str, encoding_of: Encodings
) -> None:
    case, done = encoding_of(name)
    check_segments_join(done, float(1 / rate_of(case, done)))


@pytest.mark.parametrize("name", NAMES)
def test_every_frame_is_there_once(name: str, encoding_of: Encodings) -> None:
    case, done = encoding_of(name)
    found = check_every_frame_once(done, case.frames)
    # Keyframes on the rung's GOP grid, counted from its first frame.
    gop = round(rate_of(case, done) * SLICE_SECONDS)
    keyframes = [i for i, p in enumerate(found) if p.keyframe]
    assert keyframes == list(range(0, len(found), gop))


@pytest.mark.parametrize("name", NAMES)
def test_slicing_costs_no_quality(name: str, encoding_of: Encodings) -> None:
    case, done = encoding_of(name)
    check_slicing_costs_no_quality(done, done.source, case.reference_size)


def test_a_last_slice_the_pictures_end_before_is_empty(encoding_of: Encodings) -> None:
    _, done = encoding_of("vfr-phone")
    *pictured, last = done.slices
    assert (last.rendition, last.first_pts_seconds, last.segments) == (None, None, [])
    assert (last.init_uri, last.init_sha256) == (None, None)
    assert all(s.rendition is not None and s.segments for s in pictured)
    # Nothing of it is stored but its result: no init section, no segment of sound alone.
    assert sorted(p.name for p in done.sliced.glob("*_3.*")) == ["slice_3.json"]
    assert not (done.sliced / "seg_00003.m4s").exists()


def test_the_last_slice_of_a_long_gop_transport_stream_is_its_last_picture(
    encoding_of: Encodings,
) -> None:
    _, done = encoding_of("mpegts-long-gop")
    # Every slice has its pictures, though the stream's only keyframe is at its start.
    assert [s.rendition.segment_count if s.rendition else 0 for s in done.slices] == [1, 1, 1, 1]
    assert done.slices[-1].segments[0].duration == pytest.approx(1 / 30, abs=1e-3)


def _stream(target: str) -> dict[str, object]:
    entries = "stream=width,height,field_order:stream_side_data"
    data = ffprobe_json(target, "-select_streams", "v:0", "-show_entries", entries)
    streams = data["streams"]
    assert isinstance(streams, list)
    stream: dict[str, object] = streams[0]
    return stream


def test_a_rotated_source_is_upright_at_one_size_in_every_slice(
    encoding_of: Encodings,
) -> None:
    _, done = encoding_of("rotated-90")
    sizes = {(s.rendition.width, s.rendition.height) for s in done.slices if s.rendition}
    assert sizes == {(120, 212)}
    assert len({s.init_sha256 for s in done.slices}) == 1
    for segment in done.stitched.segments:
        stream = _stream(with_init(done.sliced, done.stitched, [segment.uri]))
        assert (stream["width"], stream["height"]) == (120, 212), segment.uri
        assert "side_data_list" not in stream  # the pictures are turned, not flagged to turn


def test_interlaced_slices_are_progressive(
    encoding_of: Encodings,
) -> None:
    _, done = encoding_of("interlaced-tff")
    stitched = with_init(done.sliced, done.stitched, [s.uri for s in done.stitched.segments])
    run = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", stitched, "-vf", "idet", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = _IDET.search(run.stderr)
    assert match, run.stderr
    tff, bff, progressive = (int(n) for n in match.groups())
    assert tff + bff <= 3, (tff, bff, progressive)  # the interlaced source: ~150 combed
