import pytest
from pydantic import ValidationError

from videotranscode import DEFAULT_LADDER, RenditionSpec, parse_bitrate, select_ladder


@pytest.mark.parametrize(
    ("text", "bits"),
    [("3000k", 3_000_000), ("6M", 6_000_000), ("365000", 365_000), ("1.5m", 1_500_000), (128, 128)],
)
def test_parse_bitrate(text: str | int, bits: int) -> None:
    assert parse_bitrate(text) == bits


@pytest.mark.parametrize("text", ["", "fast", "3000kb", "-1k", "3 000k"])
def test_parse_bitrate_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a bitrate"):
        parse_bitrate(text)


def test_default_ladder_is_apples_authoring_ladder() -> None:
    assert [(r.name, r.height, r.video_bitrate) for r in DEFAULT_LADDER] == [
        ("360p", 360, 365_000),
        ("540p", 540, 2_000_000),
        ("720p", 720, 3_000_000),
        ("1080p", 1080, 6_000_000),
    ]
    assert all(r.audio_bitrate == 128_000 for r in DEFAULT_LADDER)


def test_rendition_spec_reads_camel_case_and_caps_vbr() -> None:
    rung = RenditionSpec.model_validate(
        {"name": "720p", "height": 720, "videoBitrate": "3000k", "audioBitrate": "96k"}
    )
    assert rung.video_bitrate == 3_000_000
    assert rung.audio_bitrate == 96_000
    assert rung.peak_video_bitrate == 4_500_000
    assert rung.model_copy(update={"max_bitrate": 3_300_000}).peak_video_bitrate == 3_300_000
    assert rung.model_dump(by_alias=True)["videoBitrate"] == 3_000_000


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "720P", "height": 720, "videoBitrate": "3000k"},  # not DNS-safe
        {"name": "-720p", "height": 720, "videoBitrate": "3000k"},
        {"name": "720p", "height": 10, "videoBitrate": "3000k"},
        {"name": "720p", "height": 720, "videoBitrate": "1k"},
        {"name": "720p", "height": 720, "videoBitrate": "3000k", "extra": 1},
    ],
)
def test_rendition_spec_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RenditionSpec.model_validate(bad)


def test_select_ladder_never_upscales_and_keeps_one() -> None:
    assert [r.name for r in select_ladder(DEFAULT_LADDER, 720)] == ["360p", "540p", "720p"]
    assert [r.name for r in select_ladder(DEFAULT_LADDER, 719)] == ["360p", "540p"]
    assert [r.name for r in select_ladder(DEFAULT_LADDER, 2160)] == [r.name for r in DEFAULT_LADDER]
    assert [r.name for r in select_ladder(DEFAULT_LADDER, 240)] == ["360p"]
    with pytest.raises(ValueError, match="at least one"):
        select_ladder([], 720)
