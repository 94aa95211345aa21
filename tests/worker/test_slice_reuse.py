"""A retried rendition's pods keep the slices an earlier Job stored (issue 12: finished slices
are never encoded again): `--done-slices` names them, and the worker reads each one's
`slice_<i>.json` back rather than run FFmpeg."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import AWS, make_clip, run_worker

from videotranscode import SliceResult

SLICE_1 = ["--name", "120p", "--height", "120", "--video-bitrate", "300k", "--no-audio",
           "--segment-seconds", "2", "--gop-seconds", "2", "--slice-seconds", "2",
           "--slice-index", "1"]  # fmt: skip


@pytest.fixture
def no_ffmpeg(tmp_path: Path) -> dict[str, str]:
    """An environment whose FFmpeg and ffprobe fail at once: a run that needs them fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        script = bin_dir / tool
        script.write_text("#!/bin/sh\nexit 99\n")
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", size="320x180", seconds=4)  # two 2 s slices


def result_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stdout + run.stderr
    done: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    assert done["event"] == "done"
    return dict(done["result"])


def modified(rung_dir: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in rung_dir.iterdir()}


def test_a_stored_slice_is_kept_as_it_is(
    source: Path, tmp_path: Path, no_ffmpeg: dict[str, str]
) -> None:
    out = tmp_path / "out"
    first = result_of(run_worker("rendition", str(source), str(out), *SLICE_1))
    stored = modified(out / "120p")

    again = run_worker("rendition", str(source), str(out), *SLICE_1, "--done-slices", "0,1",
                       env=no_ffmpeg)  # fmt: skip
    assert result_of(again) == first
    assert modified(out / "120p") == stored  # nothing written again

    # Not named as done: encoded (and here it fails, as FFmpeg is missing).
    other = run_worker("rendition", str(source), str(out), *SLICE_1, "--done-slices", "0",
                       env=no_ffmpeg)  # fmt: skip
    assert other.returncode != 0


def test_a_slice_named_done_but_not_stored_or_unreadable_is_encoded(
    source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    missing = result_of(run_worker("rendition", str(source), str(out), *SLICE_1,
                                   "--done-slices", "1"))  # fmt: skip
    assert missing["index"] == 1
    result_file = out / "120p" / "slice_1.json"
    result_file.write_text('{"not": "a slice result"}')
    result_of(run_worker("rendition", str(source), str(out), *SLICE_1, "--done-slices", "1"))
    assert SliceResult.model_validate_json(result_file.read_text()).index == 1


def test_a_slice_stored_in_s3_is_kept(
    source: Path, s3: Any, s3_endpoint: str, tmp_path: Path, no_ffmpeg: dict[str, str]
) -> None:
    env = {**os.environ, **AWS, "AWS_ENDPOINT_URL": s3_endpoint,
           "HLSFORGE_SCRATCH_DIR": str(tmp_path / "scratch")}  # fmt: skip
    output = "s3://media/reuse/v1"
    first = result_of(run_worker("rendition", str(source), output, *SLICE_1, env=env))
    key = "reuse/v1/120p/slice_1.json"
    stored = s3.head_object(Bucket="media", Key=key)["ETag"]

    again = run_worker("rendition", str(source), output, *SLICE_1, "--done-slices", "1",
                       env={**env, "PATH": no_ffmpeg["PATH"]})  # fmt: skip
    assert result_of(again) == first
    assert s3.head_object(Bucket="media", Key=key)["ETag"] == stored

    # Another rendition's prefix has no slice 1: that pod encodes it.
    fresh = result_of(run_worker("rendition", str(source), "s3://media/reuse/v2", *SLICE_1,
                                 "--done-slices", "1", env=env))  # fmt: skip
    s3.head_object(Bucket="media", Key="reuse/v2/120p/slice_1.json")
    assert fresh["resultKey"] == "reuse/v2/120p/slice_1.json"
