"""RFC 8216 §4.3.3.1: every EXTINF, rounded to the nearest integer, is at most
EXT-X-TARGETDURATION. The rule and its checker, as the worker and the tests use them."""

import pytest

from videotranscode import target_duration, target_duration_errors


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([0.5], 1),  # never 0: a target of 0 is no target at all
        ([0.2], 1),
        ([4.5], 5),  # halves round up (FFmpeg 5.1's lrint rounds 4.5 to 4)
        ([2.5], 3),
        ([6.0, 4.5], 6),
        ([6.006, 6.006, 0.5], 6),  # 29.97 fps: whole GOPs run a little over
        ([5.5, 6.49], 6),
        ([6.5], 7),
    ],
)
def test_target_is_the_longest_segment_rounded_half_up(
    durations: list[float], expected: int
) -> None:
    assert target_duration(durations) == expected


def test_target_needs_a_segment() -> None:
    with pytest.raises(ValueError, match="segment"):
        target_duration([])


def playlist(target: int | None, *durations: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7"]
    if target is not None:
        lines.append(f"#EXT-X-TARGETDURATION:{target}")
    lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    for i, duration in enumerate(durations):
        lines += [f"#EXTINF:{duration},", f"seg_{i:05d}.m4s"]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def test_checker_accepts_a_playlist_that_keeps_the_rule() -> None:
    assert target_duration_errors(playlist(6, "6.000000", "4.500000")) == []
    assert target_duration_errors(playlist(5, "4.500000")) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (playlist(0, "0.500000"), "segment 1 (seg_00000.m4s): 0.500000 s rounds to 1 > 0"),
        (playlist(0, "0.200000"), "EXT-X-TARGETDURATION 0 is below 1"),
        (playlist(4, "4.500000"), "rounds to 5 > 4"),
        (playlist(6, "6.000000", "6.500000"), "segment 2 (seg_00001.m4s)"),
        (playlist(None, "2.000000"), "no EXT-X-TARGETDURATION"),
        (playlist(2, "2.0") + "#EXT-X-TARGETDURATION:3\n", "more than one"),
        (playlist(6), "no segment"),
    ],
)
def test_checker_names_each_broken_rule(text: str, fragment: str) -> None:
    errors = target_duration_errors(text)
    assert any(fragment in error for error in errors), errors
