"""Unfinished multipart uploads, remembered next to the credentials
(`<config dir>/uploads/<video id>.json`) so that `upload --resume ID` knows how the file was
cut into parts. Which parts S3 already has is always asked from the API, never stored."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hlsforge_cli.credentials import config_dir


@dataclass(frozen=True)
class PendingUpload:
    video_id: str
    filename: str
    size: int
    part_size: int
    part_count: int


def _path(video_id: str) -> Path:
    return config_dir() / "uploads" / f"{video_id}.json"


def remember(upload: PendingUpload) -> None:
    path = _path(upload.video_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(upload)) + "\n")


def recall(video_id: str) -> PendingUpload | None:
    try:
        data = json.loads(_path(video_id).read_text())
        return PendingUpload(video_id=video_id, filename=str(data["filename"]),
                             size=int(data["size"]), part_size=int(data["part_size"]),
                             part_count=int(data["part_count"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget(video_id: str) -> None:
    _path(video_id).unlink(missing_ok=True)
