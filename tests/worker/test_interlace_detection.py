"""Deciding interlaced or progressive from ffprobe's field order or `idet`'s counts."""

import pytest

from transcode_worker.interlace import (
    PROGRESSIVE,
    IdetCounts,
    Scan,
    deinterlace_filter,
    parse_idet,
    scan_from_field_order,
    scan_from_idet,
)

IDET_LOG = """[Parsed_idet_0 @ 0x5581] Repeated Fields: Neither:    50 Top:     0 Bottom:     0
[Parsed_idet_0 @ 0x5581] Single frame detection: TFF:     3 BFF:    40 Progressive:     7 Undetermined:     0
[Parsed_idet_0 @ 0x5581] Multi frame detection: TFF:     0 BFF:    48 Progressive:     2 Undetermined:     0
"""  # noqa: E501


@pytest.mark.parametrize(
    ("field_order", "expected"),
    [
        ("progressive", PROGRESSIVE),
        # The decoder's per-frame flag picks the field that comes first: streams and frames
        # disagree in the wild (x264 via FFmpeg 5.1 writes `tt` over bottom-first frames).
        ("tt", Scan(interlaced=True)),
        ("bb", Scan(interlaced=True)),
        ("tb", Scan(interlaced=True)),
        ("bt", Scan(interlaced=True)),
        ("unknown", None),  # measure it
        (None, None),
    ],
)
def test_field_order_decides_when_it_says_something(
    field_order: str | None, expected: Scan | None
) -> None:
    assert scan_from_field_order(field_order) == expected


def test_idet_counts_decide_interlacing_and_which_field_is_first() -> None:
    counts = parse_idet(IDET_LOG)
    assert counts == IdetCounts(tff=0, bff=48, progressive=2, undetermined=0)
    assert scan_from_idet(counts) == Scan(interlaced=True, field_first="bff")
    assert scan_from_idet(IdetCounts(30, 2, 10, 0)) == Scan(interlaced=True, field_first="tff")
    assert scan_from_idet(IdetCounts(3, 2, 45, 0)) == PROGRESSIVE
    assert scan_from_idet(IdetCounts(0, 0, 0, 250)) == PROGRESSIVE  # no motion: can't tell
    assert scan_from_idet(parse_idet("no summary")) == PROGRESSIVE


def test_deinterlacing_keeps_one_frame_per_frame() -> None:
    assert deinterlace_filter(PROGRESSIVE) is None
    assert deinterlace_filter(Scan(interlaced=True)) == (
        "bwdif=mode=send_frame:parity=auto:deint=all"
    )
    assert deinterlace_filter(Scan(interlaced=True, field_first="tff")) == (
        "bwdif=mode=send_frame:parity=tff:deint=all"
    )
