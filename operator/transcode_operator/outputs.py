"""The output tree in S3: writing playlists, reading the slices' results, and deleting the
whole tree. The S3 client (boto3) is passed in; its calls block."""

from typing import Any

from videotranscode import HLS_PLAYLIST_TYPE, SliceResult

MASTER_CACHE_CONTROL = "max-age=60"  # as the worker's playlists: a retry may rewrite it
# A playlist still growing (EXT-X-PLAYLIST-TYPE:EVENT) is reloaded by players about every
# target duration; caches must not keep it longer than that.
GROWING_CACHE_CONTROL = "max-age=1"


def write_playlist(s3: Any, *, bucket: str, key: str, playlist: str) -> None:
    growing = "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=playlist.encode(),
        ContentType=HLS_PLAYLIST_TYPE,
        CacheControl=GROWING_CACHE_CONTROL if growing else MASTER_CACHE_CONTROL,
    )


def read_slice_result(s3: Any, *, bucket: str, key: str) -> SliceResult:
    """A slice's stored result (`<rung>/slice_<i>.json`, a few KiB)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return SliceResult.model_validate_json(body)


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
