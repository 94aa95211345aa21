"""Worker settings, read from `HLSFORGE_*` environment variables.

S3 endpoint and credentials use boto3's own variables (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`), so the same image works
against AWS and MinIO.
"""

import tempfile
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HLSFORGE_")

    scratch_dir: Path = Path(tempfile.gettempdir())
    termination_log: Path = Path("/dev/termination-log")
    max_duration_seconds: float = 4 * 3600
    min_duration_seconds: float = 0.5
    x264_preset: str = "veryfast"
    s3_addressing_style: Literal["auto", "path", "virtual"] = "path"
    upload_concurrency: int = 8
    # How long a slice's presigned URL of the source is valid: a slice is minutes of encoding,
    # and FFmpeg needs the URL again only to reconnect or seek (a reconnect after it expired
    # fails the pod, whose retry signs a new URL).
    presigned_url_seconds: int = 3600
