"""The end-of-source check: a whole source passes whatever its GOP structure or container;
a source cut short, or cut and padded with garbage, is refused with exit 2 and a reason.

The corpus is generated once per session, small and short; each case is probed by the real
worker (`rendition` and `ladder` run the same probe before encoding), from a local file and
from S3, which the probe reads through a presigned URL.
"""

import json
import os
import random
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import AWS, ffmpeg, make_clip, make_interlaced_clip, run_worker

from transcode_worker.integrity import data_end, decoded_end
from transcode_worker.packets import last_keyframe_before, parse_packets

Maker = Callable[[Path], None]
TINY = "160x120"


def _long_gop(path: Path) -> None:
    """10 s with one keyframe: nothing after a seek near the end is decodable on its own."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={TINY}:rate=25:duration=10",
           "-f", "lavfi", "-i", "sine=duration=10",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-x264-params", "keyint=250:min-keyint=250:scenecut=0", "-c:a", "aac",
           str(path))  # fmt: skip


def long_gop_ts(path: Path) -> None:
    _long_gop(path)


def long_gop_mp4(path: Path) -> None:
    ts = path.with_suffix(".ts")
    _long_gop(ts)
    ffmpeg("-i", str(ts), "-c", "copy", str(path))


def open_gop_ts(path: Path) -> None:
    """Open GOPs with B-frames: the pictures before each I-frame reference the previous GOP."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={TINY}:rate=25:duration=5",
           "-c:v", "libx264", "-preset", "fast", "-bf", "3", "-pix_fmt", "yuv420p",
           "-x264-params", "keyint=50:open-gop=1:scenecut=0", str(path))  # fmt: skip


def field_coded_1080i_ts(path: Path) -> None:
    """The source of the bug report: 1080i25 H.264, field-coded, keyint 250, in MPEG-TS."""
    make_interlaced_clip(
        path,
        size="1920x1080",
        encoder=("-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ilme+ildct",
                 "-x264-params", "keyint=250"),
    )  # fmt: skip


def starts_mid_gop_ts(path: Path) -> None:
    """A capture joined mid-GOP: its first packets are not keyframes (nor decodable)."""
    whole = path.with_name("whole.ts")
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={TINY}:rate=25:duration=6",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-x264-params", "keyint=50", str(whole))  # fmt: skip
    data = whole.read_bytes()
    start = len(data) * 4 // 10 // 188 * 188  # on a TS packet boundary, inside a GOP
    path.write_bytes(data[start:])


def half_second(path: Path) -> None:
    make_clip(path, size=TINY, seconds=0.5)


def _faststart_clip(path: Path, container: str = "mp4") -> bytes:
    """A clip whose index comes first, so that a cut keeps the index and loses the data."""
    extra = ("-movflags", "+faststart") if container in ("mp4", "mov") else ()
    whole = path.with_name(f"whole.{container}")
    make_clip(whole, size=TINY, seconds=6, extra=extra)
    return whole.read_bytes()


def cut_at(fraction: float, container: str = "mp4") -> Maker:
    def make(path: Path) -> None:
        data = _faststart_clip(path, container)
        path.write_bytes(data[: int(len(data) * fraction)])

    return make


def garbage_after_cut(path: Path) -> None:
    """Cut at 60 % and padded back to the original size: the index points into noise."""
    data = _faststart_clip(path)
    kept = data[: len(data) * 6 // 10]
    noise = random.Random(20261201).randbytes(len(data) - len(kept))  # noqa: S311
    path.write_bytes(kept + noise)


def moov_missing(path: Path) -> None:
    make_clip(path, size=TINY, seconds=2)  # the index at the end: a cut loses it
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"moov") - 4])


ACCEPTED: dict[str, tuple[str, Maker]] = {
    "long-gop-ts": ("gop.ts", long_gop_ts),
    "long-gop-mp4": ("gop.mp4", long_gop_mp4),
    "open-gop-ts": ("open.ts", open_gop_ts),
    "field-coded-1080i-ts": ("1080i.ts", field_coded_1080i_ts),
    "starts-mid-gop-ts": ("joined.ts", starts_mid_gop_ts),
    "half-second-mp4": ("short.mp4", half_second),
}

REFUSED: dict[str, tuple[str, Maker, str]] = {
    "cut-at-50-mp4": ("cut50.mp4", cut_at(0.5), "truncated"),
    "cut-at-90-mp4": ("cut90.mp4", cut_at(0.9), "truncated"),
    "cut-at-90-mov": ("cut90.mov", cut_at(0.9, "mov"), "truncated"),
    "cut-at-50-mkv": ("cut50.mkv", cut_at(0.5, "mkv"), "truncated"),
    "moov-missing": ("nomoov.mp4", moov_missing, "not a video"),
    "garbage-after-cut": ("padded.mp4", garbage_after_cut, "corrupt"),
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`corpus(case)`: the case's file, made on first use and kept for the session."""
    made: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in made:
            filename, make = ACCEPTED[case] if case in ACCEPTED else REFUSED[case][:2]
            path = tmp_path_factory.mktemp(case) / filename
            make(path)
            made[case] = path
        return made[case]

    return get


def _final(stdout: str) -> dict[str, object]:
    event = json.loads(stdout.splitlines()[-1])
    assert isinstance(event, dict)
    return event


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_whole_sources_are_accepted_whatever_their_gop(
    corpus: Callable[[str], Path], case: str, tmp_path: Path
) -> None:
    # With an output the probe makes a poster 10 % in: that decode must not depend on
    # keyframes either.
    run = run_worker("probe", str(corpus(case)), str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert _final(run.stdout)["event"] == "done"
    assert (tmp_path / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize("case", list(REFUSED))
def test_cut_or_padded_sources_are_refused_with_a_reason(
    corpus: Callable[[str], Path], case: str, tmp_path: Path
) -> None:
    source, reason = corpus(case), REFUSED[case][2]
    run = run_worker("probe", str(source))
    assert run.returncode == 2, run.stdout + run.stderr
    error = _final(run.stdout)
    assert error["event"] == "error"
    assert error["reason"] == "BadInput"
    message = str(error["message"])
    assert reason in message
    assert str(source.parent) not in message  # no local paths in what users read


def probe_from_s3(s3: Any, endpoint: str, source: Path | bytes, *args: str) -> Any:
    """`hlsforge-worker probe s3://...`, which reads the object through a presigned URL."""
    key = f"integrity/{uuid.uuid4().hex}"
    if isinstance(source, bytes):
        s3.put_object(Bucket="uploads", Key=key, Body=source)
    else:
        s3.upload_file(str(source), "uploads", key)
    env = {**os.environ, **AWS, "AWS_ENDPOINT_URL": endpoint}
    return run_worker("probe", f"s3://uploads/{key}", *args, env=env)


@pytest.mark.parametrize("case", ["long-gop-ts", "starts-mid-gop-ts", "long-gop-mp4"])
def test_whole_sources_in_s3_are_accepted_read_through_a_url(
    corpus: Callable[[str], Path], case: str, s3: Any, s3_endpoint: str, tmp_path: Path
) -> None:
    run = probe_from_s3(s3, s3_endpoint, corpus(case), str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert _final(run.stdout)["event"] == "done"
    assert (tmp_path / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize("case", [*REFUSED, "empty"])
def test_cut_or_padded_sources_in_s3_are_refused_read_through_a_url(
    corpus: Callable[[str], Path], case: str, s3: Any, s3_endpoint: str
) -> None:
    """Read in ranges over HTTP, a broken upload is found as on a local disk, and the
    message names no URL's secret."""
    source, reason = (b"", "empty") if case == "empty" else (corpus(case), REFUSED[case][2])
    run = probe_from_s3(s3, s3_endpoint, source)
    assert run.returncode == 2, run.stdout + run.stderr
    error = _final(run.stdout)
    assert error["reason"] == "BadInput"
    assert reason in str(error["message"])
    assert "X-Amz" not in run.stdout + run.stderr


def _entry(stream: int, pts: str | None, dts: str | None, flags: str) -> dict[str, object]:
    entry: dict[str, object] = {"stream_index": stream, "duration_time": "0.040000", "flags": flags}
    if pts is not None:
        entry["pts_time"] = pts
    if dts is not None:
        entry["dts_time"] = dts
    return entry


def test_packets_keep_decode_order_times_and_keyframes() -> None:
    packets = parse_packets(
        [
            _entry(0, "0.080000", "0.000000", "K__"),
            _entry(0, "0.040000", "0.040000", "___"),
            _entry(1, None, "0.020000", "K__"),  # no pts: the dts stands in
            _entry(0, None, None, "K__"),  # no timestamp at all: left out
        ]
    )
    assert [(p.stream, p.decode_time, p.start, p.key) for p in packets] == [
        (0, 0.0, 0.08, True),
        (0, 0.04, 0.04, False),
        (1, 0.02, 0.02, True),
    ]
    assert data_end(packets, {0, 1}) == pytest.approx(0.12)
    assert data_end(packets, {2}) is None


def test_decoding_starts_at_the_last_keyframe_before_the_tail() -> None:
    packets = parse_packets(
        [_entry(0, f"{t:.2f}", f"{t:.2f}", "K_" if t in (0, 4, 8) else "__") for t in range(10)]
    )
    anchor = last_keyframe_before(packets, 0, 7.5)
    assert anchor is not None
    assert anchor.start == 4
    assert last_keyframe_before(packets, 1, 7.5) is None
    assert last_keyframe_before(packets, 0, -1) is None
    frames = [{"best_effort_timestamp_time": "9.0", "pkt_duration_time": "0.04"}]
    assert decoded_end(frames) == pytest.approx(9.04)
    assert decoded_end([]) is None


def test_sound_that_outlasts_the_pictures_keeps_the_last_picture_to_its_end(
    tmp_path: Path,
) -> None:
    """2 s of pictures and 6 s of sound (a recording stopped oddly) is a whole source: the
    rung lasts 6 s, holding the last picture, and no sound is lost."""
    source = tmp_path / "talk.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={TINY}:rate=25:duration=2",
           "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=6",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(source))  # fmt: skip
    run = run_worker("ladder", str(source), str(tmp_path / "out"), "--renditions", "tiny:120:200k")
    assert run.returncode == 0, run.stdout + run.stderr
    result = _final(run.stdout)["result"]
    assert isinstance(result, dict)
    assert result["renditions"][0]["durationSeconds"] == pytest.approx(6, abs=0.1)
    # The sound is in its own rendition; every output's timestamps are source time + 1 s.
    for stream, rendition, seconds in (("v", "tiny", 6), ("a", "audio-0", 6)):
        playlist = str(tmp_path / "out" / rendition / "index.m3u8")
        decoded = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
             "frame=best_effort_timestamp_time", "-of", "csv=p=0", playlist],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert float(decoded[-1]) - 1 == pytest.approx(seconds, abs=0.1), stream
