"""Running FFmpeg and ffprobe, and turning their failures into worker errors."""

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transcode_worker.errors import BadInputError, WorkerError

# FFmpeg messages that mean the input is broken rather than the machine or FFmpeg.
_BAD_INPUT_MARKERS = (
    "Invalid data found when processing input",
    "moov atom not found",
    "partial file",
    "Decoder (codec",
    "does not contain any stream",
    "Invalid NAL unit size",
    "Error splitting the input into NAL units",
)


# FFmpeg starts a message about a file with its path: local scratch paths mean nothing to users.
_LOCAL_PATH_PREFIX = re.compile(r"^/[^:]*/")
# A URL's query: a presigned URL's signature and credential are there.
_URL_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]*)\?[^\s'\"]*", re.IGNORECASE)
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """`text` without the query of any URL in it: FFmpeg quotes its input's name in its
    messages, and a presigned URL's query is a bearer secret."""
    return _URL_QUERY.sub(rf"\1?{REDACTED}", text)


def last_line(text: str) -> str:
    """FFmpeg's last message, with the directory of a local path and URLs' queries left out."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(_LOCAL_PATH_PREFIX.sub("", lines[-1])) if lines else "no message"


def looks_like_bad_input(stderr: str) -> bool:
    return any(marker in stderr for marker in _BAD_INPUT_MARKERS)


def input_options(source: Path | str) -> list[str]:
    """FFmpeg's and ffprobe's options for reading `source`: a URL (a presigned S3 object) is
    read in byte ranges, reconnecting at the byte it got to when a connection drops or S3
    answers 5xx; a local file needs none."""
    if isinstance(source, Path):
        return []
    return ["-reconnect", "1", "-reconnect_on_network_error", "1",
            "-reconnect_on_http_error", "5xx", "-reconnect_delay_max", "30"]  # fmt: skip


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise WorkerError(f"{cmd[0]} is not installed") from exc


def ffprobe(source: Path | str) -> dict[str, Any]:
    """ffprobe's format and streams as JSON; an unreadable file is bad input."""
    result = _run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         *input_options(source), str(source)]
    )  # fmt: skip
    if result.returncode != 0:
        raise BadInputError(f"the file is not a video FFmpeg can read ({last_line(result.stderr)})")
    data: dict[str, Any] = json.loads(result.stdout or "{}")
    return data


def ffprobe_entries(source: Path | str, args: Sequence[str]) -> dict[str, Any]:
    """ffprobe's JSON for `args` (e.g. `-show_entries packet=...`), read as far as the file
    allows: what a damaged file yields is for the caller to judge, so errors are not raised."""
    result = _run(
        ["ffprobe", "-v", "error", "-print_format", "json", *args, *input_options(source),
         str(source)]
    )  # fmt: skip
    try:
        data = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def ffmpeg(args: Sequence[str], *, loglevel: str = "error") -> subprocess.CompletedProcess[str]:
    """One short FFmpeg run (poster frames, checks); output in `.stdout`/`.stderr`."""
    return _run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", loglevel, *args])


def run_with_progress(
    args: Sequence[str], on_line: Callable[[str], None], stderr_path: Path
) -> None:
    """A long FFmpeg run with `-progress pipe:1`; each stdout line goes to `on_line`."""
    cmd = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        *args,
    ]
    try:
        with (
            stderr_path.open("w") as stderr,
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True) as process,
        ):
            assert process.stdout is not None
            for line in process.stdout:
                on_line(line)
    except FileNotFoundError as exc:
        raise WorkerError("ffmpeg is not installed") from exc
    if process.returncode == 0:
        return
    stderr_text = stderr_path.read_text(errors="replace")
    if process.returncode < 0:
        raise WorkerError(f"FFmpeg was killed by signal {-process.returncode} (out of memory?)")
    if looks_like_bad_input(stderr_text):
        raise BadInputError(f"the video is corrupt or truncated ({last_line(stderr_text)})")
    raise WorkerError(f"FFmpeg failed ({last_line(stderr_text)})")
