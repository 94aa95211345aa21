"""Rewriting private HLS playlists: every media URI signed, nothing outside the video."""

import pytest

from transcode_api.playlists import PLAYLIST_PATH, PlaylistPathError, object_key, rewrite_uris

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.000000,
seg_00000.m4s
#EXTINF:2.000000,
seg_00001.m4s
#EXT-X-ENDLIST
"""


def test_every_uri_is_resolved() -> None:
    signed = rewrite_uris(
        MEDIA,
        lambda uri: f"https://s3.example/{object_key('videos/v1', '720p/index.m3u8', uri)}?sig=1",
    )
    assert '#EXT-X-MAP:URI="https://s3.example/videos/v1/720p/init.mp4?sig=1"' in signed
    lines = signed.splitlines()
    assert "https://s3.example/videos/v1/720p/seg_00000.m4s?sig=1" in lines
    assert "https://s3.example/videos/v1/720p/seg_00001.m4s?sig=1" in lines
    assert [line for line in lines if line.startswith("#") and "URI" not in line] == [
        line for line in MEDIA.splitlines() if line.startswith("#") and "URI" not in line
    ]


@pytest.mark.parametrize("uri", ["../../other/seg.m4s", "../../../x", "/abs/seg.ts",
                                 "https://evil.example/x.ts", ".."])  # fmt: skip
def test_uris_cannot_leave_the_video(uri: str) -> None:
    with pytest.raises(PlaylistPathError):
        object_key("videos/v1", "720p/index.m3u8", uri)


def test_sibling_folders_stay_inside() -> None:
    assert object_key("videos/v1", "720p/index.m3u8", "../poster.jpg") == "videos/v1/poster.jpg"
    assert object_key("videos/v1", "master.m3u8", "720p/index.m3u8") == "videos/v1/720p/index.m3u8"


@pytest.mark.parametrize(("path", "ok"), [
    ("master.m3u8", True), ("720p/index.m3u8", True), ("a/b/c.m3u8", False),
    ("../master.m3u8", False), ("720p/seg_00000.m4s", False), ("%2e%2e/x.m3u8", False),
])  # fmt: skip
def test_only_playlist_paths_are_served(path: str, ok: bool) -> None:
    assert bool(PLAYLIST_PATH.match(path)) is ok
