from collections.abc import Callable

import m3u8  # an independent HLS parser checks what we write
import pytest

from videotranscode import (
    AudioRenditionResult,
    RenditionResult,
    build_master_playlist,
    master_playlist_errors,
)


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


def sound(
    stream: int,
    name: str,
    language: str | None,
    *,
    default: bool = False,
    bandwidth: int = 140_000,
    channels: int = 2,
) -> AudioRenditionResult:
    return AudioRenditionResult(
        name=f"audio-{stream}", stream=stream, language=language, display_name=name,
        default=default, channels=channels, bandwidth=bandwidth,
        average_bandwidth=bandwidth - 10_000, codecs="mp4a.40.2", segment_count=10,
        duration_seconds=60.0, playlist_key=f"videos/1/audio-{stream}/index.m3u8",
    )  # fmt: skip


VIDEO_ONLY = [v.model_copy(update={"codecs": v.codecs.split(",")[0]}) for v in LADDER]
AUDIO = [sound(0, "English", "en"), sound(1, "Deutsch", "de", default=True, bandwidth=150_000),
         sound(2, "Audio 3", None, channels=1)]  # fmt: skip


def test_audio_renditions_form_one_group_every_variant_uses() -> None:
    text = build_master_playlist(VIDEO_ONLY, AUDIO)
    assert master_playlist_errors(text) == []
    playlist = m3u8.loads(text)
    media = {m.uri: m for m in playlist.media}
    assert set(media) == {"audio-0/index.m3u8", "audio-1/index.m3u8", "audio-2/index.m3u8"}
    assert {m.type for m in media.values()} == {"AUDIO"}
    assert {m.group_id for m in media.values()} == {"aac"}
    english, german, unnamed = (media[f"audio-{i}/index.m3u8"] for i in range(3))
    assert (english.name, english.language, english.default, english.autoselect) == (
        "English", "en", "NO", "YES")  # fmt: skip
    # The source's default disposition decides, not the order.
    assert (german.name, german.language, german.default, german.autoselect) == (
        "Deutsch", "de", "YES", "YES")  # fmt: skip
    # No language: nothing to select it by.
    assert (unnamed.language, unnamed.default, unnamed.autoselect) == (None, "NO", "NO")
    assert (english.channels, unnamed.channels) == ("2", "1")
    for variant in playlist.playlists:
        info = variant.stream_info
        assert info.audio == "aac"
        assert info.codecs.endswith(",mp4a.40.2")
        assert info.codecs.count("mp4a") == 1


def test_bandwidth_covers_the_variant_with_its_costliest_audio() -> None:
    playlist = m3u8.loads(build_master_playlist(VIDEO_ONLY, AUDIO))
    info = {p.uri: p.stream_info for p in playlist.playlists}["360p/index.m3u8"]
    assert info.bandwidth == 576_000 + 150_000
    assert info.average_bandwidth == 480_000 + 140_000
    assert info.codecs == "avc1.64001e,mp4a.40.2"
    uris = [p.uri for p in playlist.playlists]  # the default variant first, as without audio
    assert uris == ["540p/index.m3u8", "360p/index.m3u8", "720p/index.m3u8", "1080p/index.m3u8"]


def test_one_default_even_when_the_source_marks_none_or_several() -> None:
    for marked in ([], [0, 2]):
        audio = [a.model_copy(update={"default": a.stream in marked}) for a in AUDIO]
        text = build_master_playlist(VIDEO_ONLY, audio)
        assert master_playlist_errors(text) == []
        defaults = [m.uri for m in m3u8.loads(text).media if m.default == "YES"]
        assert defaults == ["audio-0/index.m3u8"]


def test_a_silent_source_keeps_video_only_variants() -> None:
    text = build_master_playlist(VIDEO_ONLY)
    assert "#EXT-X-MEDIA" not in text
    assert "AUDIO=" not in text
    assert master_playlist_errors(text) == []
    assert m3u8.loads(text).playlists[0].stream_info.codecs == "avc1.64001f"


def test_audio_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        build_master_playlist(VIDEO_ONLY, [AUDIO[0], AUDIO[1].model_copy(
            update={"display_name": "English"})])  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda t: t.replace(',AUDIO="aac"', "", 1), "no AUDIO attribute"),
        (lambda t: t.replace('AUDIO="aac"', 'AUDIO="ac3"', 1), "names no audio group"),
        (lambda t: t.replace("DEFAULT=NO", "DEFAULT=YES", 1), "2 DEFAULT=YES"),
        (lambda t: t.replace("DEFAULT=YES", "DEFAULT=NO", 1), "0 DEFAULT=YES"),
        (lambda t: t.replace("DEFAULT=YES,AUTOSELECT=YES", "DEFAULT=YES,AUTOSELECT=NO"),
         "needs AUTOSELECT=YES"),
        (lambda t: t.replace('NAME="Deutsch"', 'NAME="English"'), "NAME values repeat"),
        (lambda t: t.replace('LANGUAGE="de"', 'LANGUAGE="de utsch"'), "not a BCP 47 tag"),
        (lambda t: t.replace(',URI="audio-2/index.m3u8"', ""), "no URI"),
        (lambda t: t.replace(',CHANNELS="1"', ""), "no CHANNELS"),
        (lambda t: t.replace(",mp4a.40.2", "", 1), "no audio codec"),
    ],
)  # fmt: skip
def test_the_audio_group_checks_catch_each_broken_rule(
    edit: Callable[[str], str], error: str
) -> None:
    broken = edit(build_master_playlist(VIDEO_ONLY, AUDIO))
    assert any(error in message for message in master_playlist_errors(broken)), broken
