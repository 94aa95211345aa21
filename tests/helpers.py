"""Test helpers: generated media made with the real FFmpeg, and the worker as a process."""

import subprocess
import sys
from pathlib import Path

WORKER = [sys.executable, "-m", "transcode_worker"]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(
    path: Path,
    *,
    size: str = "640x360",
    rate: int = 30,
    seconds: float = 4,
    audio: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    """An H.264/AAC MP4 of the moving `testsrc2` pattern (and a sine tone)."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    ffmpeg(*inputs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *(["-c:a", "aac"] if audio else []), *extra, str(path))  # fmt: skip
    return path


def run_worker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`hlsforge-worker ARGS` as a real process; stdout/stderr captured as text."""
    return subprocess.run(
        [*WORKER, *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )
