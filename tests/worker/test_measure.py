import pytest

from transcode_worker.errors import WorkerError
from transcode_worker.measure import avc_codec_string, bandwidths, parse_media_playlist

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.000000,
seg_00000.m4s
#EXTINF:2.5,
seg_00001.m4s
#EXT-X-ENDLIST
"""


def test_parse_media_playlist() -> None:
    playlist = parse_media_playlist(PLAYLIST)
    assert playlist.target_duration == 6
    assert playlist.init_uri == "init.mp4"
    assert [(s.uri, s.duration) for s in playlist.segments] == [
        ("seg_00000.m4s", 6.0),
        ("seg_00001.m4s", 2.5),
    ]
    assert playlist.ended
    assert not parse_media_playlist(PLAYLIST.replace("#EXT-X-ENDLIST", "")).ended


def test_bandwidths_are_peak_and_average_over_segments() -> None:
    peak, average = bandwidths([(750_000, 6.0), (500_000, 2.0)])
    assert peak == 2_000_000  # the short last segment is the densest
    assert average == 1_250_000


def test_avc_codec_string_from_an_avcc_box() -> None:
    init = (
        b"\x00\x00\x00\x30stsd....avc1" + b"\x00" * 20 + b"\x00\x00\x00\x2eavcC\x01\x64\x00\x1f\xff"
    )
    assert avc_codec_string(init) == "avc1.64001f"


def test_avc_codec_string_from_an_annex_b_sps() -> None:
    ts_payload = b"\x47\x40\x11\x10\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67\x4d\x40\x1e\xac"
    assert avc_codec_string(ts_payload) == "avc1.4d401e"


def test_avc_codec_string_without_sps() -> None:
    with pytest.raises(WorkerError, match="sequence parameter set"):
        avc_codec_string(b"\x00\x00\x01\x41\x9a\x00\x00")
