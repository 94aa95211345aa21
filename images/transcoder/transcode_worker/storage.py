"""Where sources come from and outputs go: a local path, `s3://bucket/key` or http(s)."""

import http.client
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from transcode_worker.errors import BadInputError, WorkerError
from transcode_worker.settings import WorkerSettings
from videotranscode import MASTER_PLAYLIST, OUTPUT_CONTENT_TYPES

# Playlists may be rewritten by a retried rung; segments and posters never change in place.
PLAYLIST_CACHE = "max-age=60"
MEDIA_CACHE = "max-age=31536000"
DOWNLOAD_CHUNK = 1024 * 1024
_INDEX_SUFFIXES = (".m3u8", ".json")  # files that name other files


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def is_http(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def split_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise WorkerError(f"not an S3 URL: {url!r} (expected s3://bucket/key)")
    return bucket, key.strip("/")


def s3_client(settings: WorkerSettings) -> Any:
    """A boto3 S3 client; endpoint and credentials come from the standard AWS variables.
    Signature version 4, which every region and MinIO accept (presigned URLs included)."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 5},
        s3={"addressing_style": settings.s3_addressing_style},
        max_pool_connections=settings.upload_concurrency * 2,
        signature_version="s3v4",
    )
    return boto3.client("s3", config=config)


def _storage_error(action: str, url: str, exc: Exception) -> WorkerError:
    return WorkerError(f"could not {action} {url}: {exc}")


def fetch_source(source: str, workdir: Path, settings: WorkerSettings) -> Path:
    """The source as a local file: local paths as they are, remote ones downloaded."""
    if not (is_s3(source) or is_http(source)):
        path = Path(source)
        if not path.is_file():
            raise BadInputError(f"the source file {source} does not exist")
        return path
    target = workdir / ("source" + Path(source.split("?", 1)[0]).suffix[:8])
    if is_s3(source):
        bucket, key = split_s3_url(source)
        try:
            s3_client(settings).download_file(bucket, key, str(target))
        except Exception as exc:  # boto3 raises several unrelated types
            raise _storage_error("download", source, exc) from exc
    else:
        try:
            _download_http(source, target)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise _storage_error("download", source, exc) from exc
    return target


def presigned_source(source: str, settings: WorkerSettings) -> str:
    """A short-lived HTTPS (or the endpoint's http) URL of the S3 object `source`, for
    FFmpeg to read byte ranges of. The URL is a bearer secret: it must never be logged or
    reported (`ffmpeg.redact` hides it in FFmpeg's messages)."""
    bucket, key = split_s3_url(source)
    try:
        url: str = s3_client(settings).generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": key},
            ExpiresIn=settings.presigned_url_seconds,
        )
    except Exception as exc:  # boto3 raises several unrelated types
        raise _storage_error("sign a URL of", source, exc) from exc
    return url


def object_size(source: str, settings: WorkerSettings) -> int:
    """The size in bytes of the S3 object `source`."""
    bucket, key = split_s3_url(source)
    try:
        head = s3_client(settings).head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # boto3 raises several unrelated types
        raise _storage_error("read", source, exc) from exc
    return int(head["ContentLength"])


def _download_http(url: str, target: Path) -> None:
    # The scheme is http(s): fetch_source checked it.
    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:  # noqa: S310
        shutil.copyfileobj(response, out, DOWNLOAD_CHUNK)
        # A dropped connection ends the body early without an error: check the length.
        expected = response.headers.get("Content-Length")
        if expected is not None and out.tell() != int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - out.tell())


def location_of(output: str, relative: str) -> str:
    """Where `relative` ends up under `output`: an S3 key, or a local path."""
    if is_s3(output):
        _, prefix = split_s3_url(output)
        return f"{prefix}/{relative}" if prefix else relative
    return str(Path(output) / relative)


def read_output(output: str, relative: str, settings: WorkerSettings) -> str | None:
    """The text stored at `relative` under `output`, or None when there is none."""
    if not is_s3(output):
        path = Path(location_of(output, relative))
        return path.read_text() if path.is_file() else None
    bucket, _ = split_s3_url(output)
    key = location_of(output, relative)
    client = s3_client(settings)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    except Exception as exc:  # boto3 raises several unrelated types
        raise _storage_error("read", f"s3://{bucket}/{key}", exc) from exc
    return str(body.decode())


def _upload_order(files: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Media first, playlists and slice results after (master last), so none of them names a
    missing file."""
    files = sorted(files)
    media = [f for f in files if f.suffix not in _INDEX_SUFFIXES]
    playlists = sorted(
        (f for f in files if f.suffix in _INDEX_SUFFIXES), key=lambda f: f.name == MASTER_PLAYLIST
    )
    return media, playlists


def publish(staging: Path, names: Iterable[str], output: str, settings: WorkerSettings) -> None:
    """Put the top-level entries `names` of `staging` under `output`: local directories are
    replaced whole; S3 objects of the same name are overwritten."""
    if is_s3(output):
        _upload(staging, list(names), output, settings)
        return
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:  # a name may be a path within a directory: `720p/seg_00004.m4s`
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        shutil.move(str(staging / name), str(target))


def _upload(staging: Path, names: list[str], output: str, settings: WorkerSettings) -> None:
    bucket, _ = split_s3_url(output)
    client = s3_client(settings)
    transfer = TransferConfig(multipart_threshold=64 * 1024 * 1024, max_concurrency=4)
    files = [
        path
        for name in names
        for path in (
            [staging / name] if (staging / name).is_file() else (staging / name).rglob("*")
        )
        if path.is_file()
    ]

    def upload(path: Path) -> None:
        relative = path.relative_to(staging).as_posix()
        cache = PLAYLIST_CACHE if path.suffix in _INDEX_SUFFIXES else MEDIA_CACHE
        extra = {
            "ContentType": OUTPUT_CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            "CacheControl": cache,
        }
        key = location_of(output, relative)
        try:
            client.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=transfer)
        except Exception as exc:  # boto3 raises several unrelated types
            raise _storage_error("upload to", f"s3://{bucket}/{key}", exc) from exc

    media, playlists = _upload_order(files)
    with ThreadPoolExecutor(settings.upload_concurrency) as pool:
        list(pool.map(upload, media))
    for playlist in playlists:
        upload(playlist)
