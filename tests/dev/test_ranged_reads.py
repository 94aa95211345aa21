"""The dev stack's moto serves byte ranges of a large object from the bytes it kept, and an
object written again is served afresh."""

from typing import Any

from hlsforge_dev import ranged_reads

SIZE = ranged_reads.KEPT_FROM_BYTES + 1000


def ranged(s3: Any, key: str, first: int, last: int) -> bytes:
    body: bytes = s3.get_object(Bucket="uploads", Key=key, Range=f"bytes={first}-{last}")[
        "Body"
    ].read()
    return body


def test_ranges_of_a_large_object_are_served_from_its_kept_bytes(s3: Any) -> None:
    ranged_reads.install()
    first = bytes(range(256)) * (SIZE // 256 + 1)
    s3.put_object(Bucket="uploads", Key="ranged/source.mp4", Body=first[:SIZE])
    assert ranged(s3, "ranged/source.mp4", 1000, 1009) == first[1000:1010]
    kept = [key for key, _ in ranged_reads._kept.values() if key.name == "ranged/source.mp4"]
    assert len(kept) == 1  # the next ranges do not read the whole object again
    assert ranged(s3, "ranged/source.mp4", SIZE - 10, SIZE - 1) == first[SIZE - 10 : SIZE]

    second = b"\x07" * SIZE  # written again: the old bytes are never served
    s3.put_object(Bucket="uploads", Key="ranged/source.mp4", Body=second)
    assert ranged(s3, "ranged/source.mp4", 1000, 1009) == b"\x07" * 10
    assert len(ranged_reads._kept) <= ranged_reads.KEPT_OBJECTS

    small = b"#EXTM3U\n"  # not kept: cheap to read whole
    s3.put_object(Bucket="uploads", Key="ranged/index.m3u8", Body=small)
    assert ranged(s3, "ranged/index.m3u8", 0, 3) == b"#EXT"
    assert all(key.name != "ranged/index.m3u8" for key, _ in ranged_reads._kept.values())
