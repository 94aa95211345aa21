"""Publishing a rendition while it is encoded: finished segments and an EVENT playlist of
them, then the rest and the final playlist."""

import threading
from pathlib import Path
from typing import Any

import m3u8
import pytest

from transcode_worker.growing import GrowingPublisher, as_vod
from transcode_worker.settings import WorkerSettings

HEAD = ("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n"
        '#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI="init.mp4"\n')  # fmt: skip


def segments(*numbers: int) -> str:
    return "".join(f"#EXTINF:6.016000,\nseg_{n:05d}.m4s\n" for n in numbers)


class Published:
    """The publisher's events, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Event()

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._arrived.set()

    def wait(self) -> dict[str, Any]:
        assert self._arrived.wait(timeout=30), "nothing was published"
        self._arrived.clear()
        return self.events[-1]


@pytest.fixture
def encoding(tmp_path: Path) -> Path:
    """FFmpeg's output directory, as it is after one segment: a second being written."""
    directory = tmp_path / "work" / "out" / "audio-0"
    directory.mkdir(parents=True)
    for name in ("init.mp4", "seg_00000.m4s", "seg_00001.m4s"):
        (directory / name).write_bytes(name.encode())
    return directory


def test_finished_segments_are_published_while_the_rest_is_encoded(
    encoding: Path, tmp_path: Path
) -> None:
    out = tmp_path / "public"
    published = Published()
    publisher = GrowingPublisher(encoding.parent, "audio-0", str(out), WorkerSettings(),
                                 emit=published, interval=0.01)  # fmt: skip
    (encoding / "index.m3u8").write_text(HEAD + segments(0))
    publisher.start()
    try:
        event = published.wait()
        assert event == {"event": "published", "rendition": "audio-0", "segments": 1,
                         "seconds": 6.016}  # fmt: skip
        stored = out / "audio-0"
        assert sorted(p.name for p in stored.iterdir()) == [
            "index.m3u8", "init.mp4", "seg_00000.m4s"]  # fmt: skip
        growing = m3u8.load(str(stored / "index.m3u8"))
        assert growing.playlist_type == "event"
        assert not growing.is_endlist
        assert [s.uri for s in growing.segments] == ["seg_00000.m4s"]
        # A playlist caught half written is left for the next round.
        (encoding / "index.m3u8").write_text(HEAD + segments(0, 1).rstrip("\n"))
        (encoding / "index.m3u8").write_text(HEAD + segments(0, 1))
        assert published.wait()["segments"] == 2
    finally:
        publisher.stop()
    assert (encoding / "seg_00000.m4s").exists()  # published copies: the encode's stay whole
    (encoding / "seg_00002.m4s").write_bytes(b"last")
    final = as_vod(HEAD + segments(0, 1, 2) + "#EXT-X-ENDLIST\n")
    (encoding / "index.m3u8").write_text(final)
    publisher.finish()
    assert (out / "audio-0" / "index.m3u8").read_text() == final
    assert (out / "audio-0" / "seg_00002.m4s").read_bytes() == b"last"
    vod = m3u8.load(str(out / "audio-0" / "index.m3u8"))
    assert vod.playlist_type == "vod"
    assert vod.is_endlist


def test_a_failed_upload_fails_the_encode(encoding: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    published = Published()
    publisher = GrowingPublisher(encoding.parent, "audio-0", str(blocked), WorkerSettings(),
                                 emit=published, interval=0.01)  # fmt: skip
    (encoding / "index.m3u8").write_text(HEAD + segments(0))
    publisher.start()
    (encoding / "index.m3u8").write_text(as_vod(HEAD + segments(0) + "#EXT-X-ENDLIST\n"))
    with pytest.raises(OSError):  # noqa: PT011 (the local file system's own error)
        publisher.finish()
    assert published.events == []
