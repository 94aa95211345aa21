"""A rung's media playlist stitched from its time slices' results (issue 12): no media read."""

import m3u8
import pytest

from videotranscode import (
    RenditionResult,
    SliceResult,
    SliceSegment,
    finished_prefix,
    stitch_media_playlist,
    target_duration_errors,
)

MEASURED = RenditionResult(
    name="360p", width=640, height=360, frame_rate=30, bandwidth=900_000,
    average_bandwidth=700_000, codecs="avc1.64001e,mp4a.40.2", segment_count=2,
    duration_seconds=12, playlist_key="videos/v1/360p/slice_0.json",
)  # fmt: skip


def piece(
    index: int, *durations: float, init: str | None = "same", ts: bool = False
) -> SliceResult:
    first = index * 2  # 12 s slices of 6 s segments
    ext = "ts" if ts else "m4s"
    return SliceResult(
        rendition=MEASURED,
        index=index,
        first_pts_seconds=1 + index * 12,
        segments=[
            SliceSegment(uri=f"seg_{first + n:05d}.{ext}", duration=d)
            for n, d in enumerate(durations)
        ],
        init_uri=None if ts else f"init_{index}.mp4",
        init_sha256=None if ts else init,
        result_key=f"videos/v1/360p/slice_{index}.json",
    )


SLICES = [piece(0, 6, 6), piece(1, 6, 6), piece(2, 4.5)]


def test_all_slices_make_one_vod_playlist_with_one_shared_init_section() -> None:
    text = stitch_media_playlist(reversed(SLICES), slice_count=3)  # any order
    playlist = m3u8.loads(text)
    assert playlist.playlist_type == "vod"
    assert playlist.is_endlist
    assert playlist.media_sequence == 0
    assert [s.uri for s in playlist.segments] == [f"seg_{n:05d}.m4s" for n in range(5)]
    assert [s.duration for s in playlist.segments] == [6, 6, 6, 6, 4.5]
    assert [m.uri for m in playlist.segment_map] == ["init_0.mp4"]
    assert "#EXT-X-DISCONTINUITY" not in text
    assert target_duration_errors(text) == []
    assert playlist.target_duration == 6


def test_a_slice_whose_init_differs_gets_a_discontinuity_and_its_own_map() -> None:
    odd = [SLICES[0], piece(1, 6, 6, init="other"), piece(2, 4.5)]
    text = stitch_media_playlist(odd, slice_count=3)
    lines = text.splitlines()
    maps = [line for line in lines if line.startswith("#EXT-X-MAP")]
    assert maps == ['#EXT-X-MAP:URI="init_0.mp4"', '#EXT-X-MAP:URI="init_1.mp4"',
                    '#EXT-X-MAP:URI="init_2.mp4"']  # fmt: skip
    assert lines.count("#EXT-X-DISCONTINUITY") == 2
    at = lines.index('#EXT-X-MAP:URI="init_1.mp4"')
    assert lines[at - 1] == "#EXT-X-DISCONTINUITY"
    assert lines[at + 2] == "seg_00002.m4s"
    assert len(m3u8.loads(text).segments) == 5


def test_an_unfinished_rung_is_an_event_playlist_of_its_contiguous_prefix() -> None:
    text = stitch_media_playlist([SLICES[0], SLICES[2]], slice_count=3)  # slice 1 is missing
    playlist = m3u8.loads(text)
    assert playlist.playlist_type == "event"
    assert not playlist.is_endlist
    assert [s.uri for s in playlist.segments] == ["seg_00000.m4s", "seg_00001.m4s"]
    assert target_duration_errors(text) == []
    assert [s.index for s in finished_prefix(SLICES[1:])] == []


def test_an_empty_last_slice_adds_nothing_but_ends_the_playlist() -> None:
    # The sound alone reaches the last slice: no picture, no segment, no init section.
    empty = SliceResult(rendition=None, index=2, first_pts_seconds=None, segments=[],
                        result_key="videos/v1/360p/slice_2.json")  # fmt: skip
    text = stitch_media_playlist([*SLICES[:2], empty], slice_count=3)
    playlist = m3u8.loads(text)
    assert (playlist.playlist_type, playlist.is_endlist) == ("vod", True)
    assert [s.uri for s in playlist.segments] == [f"seg_{n:05d}.m4s" for n in range(4)]
    assert [m.uri for m in playlist.segment_map] == ["init_0.mp4"]
    assert "#EXT-X-DISCONTINUITY" not in text
    assert target_duration_errors(text) == []
    assert SliceResult.model_validate_json(empty.model_dump_json(by_alias=True)) == empty
    assert '"rendition":null' in empty.summary().model_dump_json(by_alias=True)


def test_mpegts_slices_have_no_map() -> None:
    text = stitch_media_playlist([piece(0, 6, 6, ts=True), piece(1, 0.5, ts=True)], 2)
    playlist = m3u8.loads(text)
    assert not playlist.segment_map
    assert playlist.version == 6
    assert target_duration_errors(text) == []
    assert [s.uri for s in playlist.segments][-1] == "seg_00002.ts"


def test_a_rung_cannot_be_stitched_without_its_first_slice_or_with_too_many() -> None:
    with pytest.raises(ValueError, match="first slice"):
        stitch_media_playlist(SLICES[1:], slice_count=3)
    with pytest.raises(ValueError, match="has 2"):
        stitch_media_playlist(SLICES, slice_count=2)


def test_the_termination_message_leaves_the_segments_out() -> None:
    long_slice = piece(0, *[6.0] * 200)
    summary = long_slice.summary().model_dump_json(by_alias=True)
    assert "segments" not in summary
    assert len(summary.encode()) < 1024
    assert SliceResult.model_validate_json(long_slice.model_dump_json(by_alias=True)) == long_slice
