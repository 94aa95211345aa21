"""A corpus of broken sources: each one fails with exit code 2, a readable reason, and
leaves no output and no scratch files behind."""

import json
import os
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ClipFactory
from helpers import ffmpeg, make_clip, run_worker


def drop_box(data: bytes, box_type: bytes) -> bytes:
    """The MP4 without its top-level `box_type` box."""
    out, offset = b"", 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind != box_type:
            out += data[offset : offset + size]
        offset += size
    return out


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def text_named_mp4(path: Path) -> None:
    path.write_text("this is not a video, just a text file with a .mp4 name\n" * 20)


def truncated_mp4(path: Path) -> None:
    make_clip(path, seconds=3, extra=("-movflags", "+faststart"))  # index first, data cut
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def moov_missing(path: Path) -> None:
    make_clip(path, seconds=2)
    path.write_bytes(drop_box(path.read_bytes(), b"moov"))


def audio_only(path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac", str(path))


def still_image(path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", "-f", "image2",
           "-c:v", "png", str(path))  # fmt: skip


def random_bytes(path: Path) -> None:
    # Seeded: some random byte strings happen to parse as raw H.263 or lyrics files.
    path.write_bytes(random.Random(20261124).randbytes(200_000))  # noqa: S311


def one_frame(path: Path) -> None:
    make_clip(path, seconds=1, audio=False, extra=("-frames:v", "1"))


def too_long(path: Path) -> None:
    make_clip(path, seconds=4)  # the tests set a 3.5 s limit


CORPUS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "zero-byte": ("empty.mp4", zero_bytes, "empty"),
    "text": ("notes.mp4", text_named_mp4, "not a video"),
    "truncated": ("cut.mp4", truncated_mp4, "truncated"),
    "moov-missing": ("nomoov.mp4", moov_missing, "not a video"),
    "audio-only": ("song.m4a", audio_only, "no video stream"),
    "still-image": ("picture.mp4", still_image, "still image"),
    "random-bytes": ("noise.mov", random_bytes, "not a video"),
    "one-frame": ("blip.mp4", one_frame, "too short"),
    "too-long": ("long.mp4", too_long, "too long"),
}


@pytest.mark.parametrize("command", ["probe", "rendition", "ladder"])
@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_input_exits_2_with_a_reason_and_no_output(
    tmp_path: Path, case: str, command: str
) -> None:
    filename, make, reason = CORPUS[case]
    source = tmp_path / filename
    make(source)
    out, scratch, term = tmp_path / "out", tmp_path / "scratch", tmp_path / "term.json"
    args = {
        "probe": [str(out)],
        "rendition": [str(out), "--name", "240p", "--height", "240", "--video-bitrate", "300k"],
        "ladder": [str(out), "--renditions", "240p:240:300k"],
    }[command]
    env = {
        **os.environ,
        "HLSFORGE_SCRATCH_DIR": str(scratch),
        "HLSFORGE_MAX_DURATION_SECONDS": "3.5",
    }
    run = run_worker(command, str(source), *args, "--termination-log", str(term), env=env)

    assert run.returncode == 2, run.stdout + run.stderr
    error = json.loads(run.stdout.splitlines()[-1])
    assert error["event"] == "error"
    assert error["reason"] == "BadInput"
    assert reason in error["message"]
    assert str(tmp_path) not in error["message"]  # no local paths in what users read
    assert json.loads(term.read_text()) == error
    assert f"hlsforge-worker: {error['message']}" in run.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not any(scratch.iterdir())


def test_a_killed_ffmpeg_is_retryable_not_bad_input(clip: ClipFactory, tmp_path: Path) -> None:
    """FFmpeg dying from a signal (the OOM killer, say) exits 1: a retry may succeed."""
    shim = tmp_path / "bin"
    shim.mkdir()
    real = next(
        Path(d) / "ffmpeg"
        for d in os.environ["PATH"].split(os.pathsep)
        if (Path(d) / "ffmpeg").is_file()
    )
    (shim / "ffmpeg").write_text(
        f'#!/bin/sh\ncase "$*" in *-progress*) kill -9 $$;; esac\nexec {real} "$@"\n'
    )
    (shim / "ffmpeg").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    out = tmp_path / "out"
    run = run_worker("rendition", str(clip(seconds=2)), str(out), "--name", "240p",
                     "--height", "240", "--video-bitrate", "300k", env=env)  # fmt: skip
    assert run.returncode == 1
    error = json.loads(run.stdout.splitlines()[-1])
    assert error["reason"] == "Error"
    assert "killed by signal 9" in error["message"]
    assert not out.exists() or not any(out.iterdir())


def test_missing_local_source_is_bad_input(tmp_path: Path) -> None:
    run = run_worker("probe", str(tmp_path / "nope.mp4"))
    assert run.returncode == 2
    assert "does not exist" in json.loads(run.stdout.splitlines()[-1])["message"]


@pytest.mark.parametrize(
    "args",
    [
        ["rendition", "a.mp4", "out", "--name", "BAD NAME", "--height", "240",
         "--video-bitrate", "1k"],
        ["rendition", "a.mp4", "out", "--name", "x", "--height", "240", "--video-bitrate", "300k",
         "--segment-seconds", "5"],
        ["ladder", "a.mp4", "out", "--renditions", "999p"],
    ],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(args: list[str]) -> None:
    run = run_worker(*args)
    assert run.returncode == 2
    assert "usage: hlsforge-worker" in run.stderr
    assert run.stdout == ""
