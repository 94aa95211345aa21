"""The output tree in S3: where its master playlist and poster are, writing the master
playlist, and deleting the whole tree. The S3 client (boto3) is passed in; its calls block."""

from typing import Any

from videotranscode import Playback, VideoTranscodeSpec

MASTER = "master.m3u8"
POSTER = "poster.jpg"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
MASTER_CACHE_CONTROL = "max-age=60"


def master_key(prefix: str) -> str:
    return f"{prefix}/{MASTER}"


def playback_of(spec: VideoTranscodeSpec, public_base_url: str | None) -> Playback:
    """Where the finished transcode plays from (pure: the keys follow from the spec)."""
    key = master_key(spec.output.prefix)
    return Playback(
        master_playlist=key,
        url=f"{public_base_url.rstrip('/')}/{key}" if public_base_url else None,
        thumbnail=f"{spec.output.prefix}/{POSTER}" if spec.thumbnail.enabled else None,
    )


def write_master(s3: Any, *, bucket: str, key: str, playlist: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=playlist.encode(),
        ContentType=PLAYLIST_CONTENT_TYPE,
        CacheControl=MASTER_CACHE_CONTROL,
    )


def delete_outputs(s3: Any, *, bucket: str, prefix: str) -> int:
    """Delete every object under `prefix/`; returns how many."""
    deleted = 0
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted
