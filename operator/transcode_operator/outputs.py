"""The output tree in S3: writing its master playlist, and deleting the whole tree.
The S3 client (boto3) is passed in; its calls block."""

from typing import Any

from videotranscode import HLS_PLAYLIST_TYPE

MASTER_CACHE_CONTROL = "max-age=60"  # as the worker's playlists: a retry may rewrite it


def write_master(s3: Any, *, bucket: str, key: str, playlist: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=playlist.encode(),
        ContentType=HLS_PLAYLIST_TYPE,
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
