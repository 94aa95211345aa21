"""The audio renditions' facts: names, language tags, readable names, the default, the plan."""

import re

import pytest

from videotranscode import (
    AUDIO_NAME_PATTERN,
    AudioTrackInfo,
    SourceInfo,
    audio_display_names,
    audio_rendition_name,
    default_audio_index,
    language_tag,
    plan_audio_renditions,
)

# A Kubernetes Job name (a DNS-1123 label) is `<cr>-<rendition>`: the suffix must fit one.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def track(index: int, **fields: object) -> AudioTrackInfo:
    return AudioTrackInfo.model_validate(
        {"index": index, "codec": "aac", "channels": 2, "sampleRate": 48000, **fields}
    )


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("eng", "en"), ("ger", "de"), ("deu", "de"), ("fre", "fr"), ("FRA", "fr"),
        ("en", "en"), ("en-US", "en-us"), ("pt_BR", "pt-br"), ("gsw", "gsw"),  # no 639-1 code
        ("und", None), ("zxx", None), ("", None), (None, None), ("english!", None),
        ("x", None),
    ],
)  # fmt: skip
def test_language_tags_become_short_lowercase_bcp47(raw: str | None, tag: str | None) -> None:
    assert language_tag(raw) == tag


def test_rendition_names_fit_a_job_name_and_the_args_pattern() -> None:
    for index in (0, 1, 9, 99):
        name = audio_rendition_name(index)
        assert DNS_LABEL.match(name)
        assert re.match(AUDIO_NAME_PATTERN, name)
    assert audio_rendition_name(1) == "audio-1"
    with pytest.raises(ValueError, match="out of range"):
        audio_rendition_name(100)


def test_readable_names_title_then_language_then_number_and_unique() -> None:
    tracks = [
        track(0, language="en"),
        track(1, language="de", title="Kommentar"),
        track(2, language="en"),
        track(3),
        track(4, language="gsw"),
        track(5, title='Say "hi"\nnow'),  # a NAME is a quoted string on one line
        track(6, title="   "),
    ]
    assert audio_display_names(tracks) == [
        "English", "Kommentar", "English (2)", "Audio 4", "Audio 5 (gsw)", "Say hi now",
        "Audio 7",
    ]  # fmt: skip


def test_the_default_is_the_sources_default_disposition_else_the_first() -> None:
    assert default_audio_index([]) is None
    assert default_audio_index([track(0), track(1)]) == 0
    assert default_audio_index([track(0), track(1, default=True), track(2, default=True)]) == 1


def test_one_rendition_per_audio_stream_mono_stays_mono() -> None:
    tracks = [
        track(0, language="en", channels=6),
        track(1, language="de", channels=1, default=True),
    ]
    plans = plan_audio_renditions(tracks)
    assert [(p.name, p.stream, p.channels, p.bitrate, p.default) for p in plans] == [
        ("audio-0", 0, 2, 128_000, False),
        ("audio-1", 1, 1, 64_000, True),
    ]
    assert [(p.language, p.display_name) for p in plans] == [("en", "English"), ("de", "Deutsch")]
    assert plan_audio_renditions([]) == []


def test_older_probe_results_without_the_audio_streams_still_parse() -> None:
    old = {
        "durationSeconds": 4.0, "container": "mov", "sizeBytes": 10,
        "video": {"codec": "h264", "width": 64, "height": 64, "fps": 30, "frameRate": "30/1",
                  "pixelFormat": "yuv420p", "rotation": 0},
        "audio": {"codec": "aac", "channels": 2, "sampleRate": 48000},
    }  # fmt: skip
    info = SourceInfo.model_validate(old)
    assert info.audio_streams == []
    assert info.audio is not None
