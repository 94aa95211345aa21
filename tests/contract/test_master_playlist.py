import m3u8  # an independent HLS parser checks what we write
import pytest

from videotranscode import RenditionResult, build_master_playlist


def variant(
    name: str, height: int, average: int, codecs: str = "avc1.64001f,mp4a.40.2"
) -> RenditionResult:
    return RenditionResult(
        name=name,
        width=height * 16 // 9 // 2 * 2,
        height=height,
        frame_rate=29.97,
        bandwidth=round(average * 1.2),
        average_bandwidth=average,
        codecs=codecs,
        segment_count=10,
        duration_seconds=60.0,
        playlist_key=f"videos/1/{name}/index.m3u8",
    )


LADDER = [
    variant("1080p", 1080, 6_200_000),
    variant("360p", 360, 480_000, "avc1.64001e,mp4a.40.2"),
    variant("720p", 720, 3_100_000),
    variant("540p", 540, 2_100_000),
]


def test_master_lists_every_variant_with_measured_attributes() -> None:
    playlist = m3u8.loads(build_master_playlist(LADDER))
    assert playlist.is_variant
    by_uri = {p.uri: p.stream_info for p in playlist.playlists}
    assert set(by_uri) == {f"{v.name}/index.m3u8" for v in LADDER}
    info = by_uri["360p/index.m3u8"]
    assert info.bandwidth == 576_000
    assert info.average_bandwidth == 480_000
    assert info.resolution == (640, 360)
    assert info.frame_rate == pytest.approx(29.97)
    assert info.codecs == "avc1.64001e,mp4a.40.2"


def test_first_variant_is_the_best_rung_most_connections_sustain() -> None:
    uris = [p.uri for p in m3u8.loads(build_master_playlist(LADDER)).playlists]
    assert uris == ["540p/index.m3u8", "360p/index.m3u8", "720p/index.m3u8", "1080p/index.m3u8"]


def test_first_variant_falls_back_to_the_lowest() -> None:
    expensive = [variant("1080p", 1080, 8_000_000), variant("720p", 720, 4_000_000)]
    uris = [p.uri for p in m3u8.loads(build_master_playlist(expensive)).playlists]
    assert uris == ["720p/index.m3u8", "1080p/index.m3u8"]


def test_master_declares_independent_segments_and_needs_variants() -> None:
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in build_master_playlist(LADDER[:1]).splitlines()
    with pytest.raises(ValueError, match="at least one variant"):
        build_master_playlist([])
