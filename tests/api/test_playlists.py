"""Rewriting private HLS playlists: every media URI signed, nothing outside the video."""

import re

import pytest

from transcode_api.playlists import (
    PLAYLIST_PATH,
    PlaylistPathError,
    object_key,
    rewrite_master,
    rewrite_uris,
)

URI_VALUE = re.compile(r'(?:^#[A-Z0-9-]+:|,)URI="([^"]*)"')

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


MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio-0/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Talk, URI=",DEFAULT=NO,AUTOSELECT=NO,CHANNELS="1",URI="audio-1/index.m3u8"
#EXT-X-SESSION-DATA:DATA-ID="com.example.chapters",URI="chapters.json"
#EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=600000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aac"
360p/index.m3u8
"""  # noqa: E501


def sign(uri: str) -> str:
    return f"https://s3.example/{object_key('videos/v1', 'master.m3u8', uri)}?sig=1"


def test_a_masters_playlists_stay_relative_for_the_route_and_the_rest_is_signed() -> None:
    served = rewrite_master(MASTER, "master.m3u8", sign)
    lines = served.splitlines()
    # Players resolve these against the tokenised master URL: the route serves and signs them.
    assert lines[3].endswith(',URI="audio-0/index.m3u8"')
    assert lines[4].endswith(',URI="audio-1/index.m3u8"')
    assert "360p/index.m3u8" in lines
    # What the route would not serve is signed rather than left relative.
    assert 'URI="https://s3.example/videos/v1/chapters.json?sig=1"' in lines[5]
    for line in lines:
        for uri in [*URI_VALUE.findall(line), *([] if line.startswith("#") else [line])]:
            assert uri.startswith("https://") or PLAYLIST_PATH.match(uri), line


def test_a_name_holding_uri_equals_does_not_hide_the_real_uri() -> None:
    """A track title comes from the uploaded file: `NAME="Talk, URI="` must not be taken for
    the URI attribute, which would leave the real one unsigned."""
    signed = rewrite_uris(MASTER, lambda uri: f"signed:{uri}")
    line = signed.splitlines()[4]
    assert 'NAME="Talk, URI="' in line  # untouched
    assert line.endswith('URI="signed:audio-1/index.m3u8"')


def test_every_uri_attribute_of_every_tag_is_resolved() -> None:
    text = (
        "#EXTM3U\n"
        '#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x1\n'
        '#EXT-X-MAP:URI="init.mp4",BYTERANGE="100@0"\n'
        "#EXTINF:6.000000,\nseg_00000.m4s\n"
    )
    signed = rewrite_uris(text, lambda uri: f"signed:{uri}")
    assert '#EXT-X-KEY:METHOD=AES-128,URI="signed:key.bin",IV=0x1' in signed
    assert '#EXT-X-MAP:URI="signed:init.mp4",BYTERANGE="100@0"' in signed
    assert "#EXTINF:6.000000," in signed
    assert "signed:seg_00000.m4s" in signed


@pytest.mark.parametrize(
    "line",
    [
        '#EXT-X-MEDIA:TYPE=AUDIO,URI="audio-0/index.m3u8',  # unterminated
        "#EXT-X-MEDIA:TYPE=AUDIO,URI=audio-0/index.m3u8",  # unquoted
        '#EXT-X-MEDIA:TYPE=AUDIO;URI="audio-0/index.m3u8"',  # not an attribute list
    ],
)
def test_a_uri_that_cannot_be_read_for_sure_is_refused(line: str) -> None:
    with pytest.raises(PlaylistPathError):
        rewrite_master(f"#EXTM3U\n{line}\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n",
                       "master.m3u8", sign)  # fmt: skip


@pytest.mark.parametrize("uri", ["../other/index.m3u8", "/abs/index.m3u8", "https://evil/x"])
def test_a_masters_uris_cannot_leave_the_video(uri: str) -> None:
    text = MASTER.replace("audio-1/index.m3u8", uri)
    with pytest.raises(PlaylistPathError):
        rewrite_master(text, "master.m3u8", sign)
