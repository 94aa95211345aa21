"""Ranged GETs from moto that cost what they cost on S3: a few bytes, not the whole object.

moto answers a GET with a `Range` by reading the whole object out of its buffer and slicing
it: 0.28 s for each request on a 287 MB upload, however few bytes it asks for. The worker
reads large sources through presigned URLs in byte ranges (the probe, time slices, audio),
each read a handful of requests, so on `make dev` this cost alone outweighed the work. The
bytes of the few most recently read large objects are kept, as S3 serves a range without
reading the rest; an object written again is read afresh. Only the dev stack installs this.
"""

import threading
from collections import OrderedDict
from typing import Any

from moto.s3.models import FakeKey

KEPT_OBJECTS = 2  # sources being read at once: one transcode's probe, slices and audio
KEPT_FROM_BYTES = 8 * 1024 * 1024  # smaller objects (segments, playlists) are cheap to read

_plain_value = FakeKey.value
_kept: OrderedDict[int, tuple[FakeKey, bytes]] = OrderedDict()
_lock = threading.Lock()


def _value(key: FakeKey) -> bytes:
    with _lock:
        hit = _kept.get(id(key))
        if hit is not None and hit[0] is key:
            _kept.move_to_end(id(key))
            return hit[1]
    value: bytes = _plain_value.fget(key)  # type: ignore[attr-defined]
    if len(value) >= KEPT_FROM_BYTES:
        with _lock:
            _kept[id(key)] = (key, value)
            while len(_kept) > KEPT_OBJECTS:
                _kept.popitem(last=False)
    return value


def _set_value(key: FakeKey, value: Any) -> None:
    with _lock:
        _kept.pop(id(key), None)
    _plain_value.fset(key, value)  # type: ignore[attr-defined]


def install() -> None:
    """Keep recently read large objects' bytes in moto's (this process's) S3 backend."""
    FakeKey.value = property(_value, _set_value)  # type: ignore[assignment,method-assign]
