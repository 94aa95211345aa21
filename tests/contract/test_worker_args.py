"""The worker's command line, round trip: what the operator's Jobs pass (the contract's
`argv()`), the worker's own parser reads back field for field."""

import pytest
from pydantic import ValidationError

from transcode_worker.cli import read_request as parsed
from videotranscode import (
    AudioArgs,
    AudioTrackInfo,
    PosterArgs,
    ProbeArgs,
    RenditionArgs,
    RenditionSpec,
    SourceInfo,
    plan_audio_renditions,
)

PROBE = ProbeArgs(source="s3://uploads/u1/v1/original.mov")
PROBE_WITH_POSTER = ProbeArgs(
    source="https://example.com/a.mp4",
    poster=PosterArgs(output="s3://media/videos/v1", at_percent=37.5, long_side=320),
)
RUNG = RenditionSpec(
    name="720p", height=720, video_bitrate=3_100_000, max_bitrate=4_000_000, audio_bitrate=96_000
)


RENDITION = RenditionArgs(
    source="s3://uploads/u1/v1/original.mov", output="s3://media/videos/v1", rendition=RUNG,
    segment_seconds=4, gop_seconds=2, segment_type="mpegts",
)  # fmt: skip


SLICE = RENDITION.model_copy(update={"slice_seconds": 12, "slice_index": 7})
VIDEO_ONLY = RENDITION.model_copy(update={"audio": False})
VIDEO_ONLY_SLICE = SLICE.model_copy(update={"audio": False})
RETRIED_SLICE = SLICE.model_copy(update={"done_slices": frozenset({0, 1, 2, 5})})
AUDIO = AudioArgs(
    source="s3://uploads/u1/v1/original.mov", output="s3://media/videos/v1", name="audio-3",
    stream=3, bitrate=96_000, segment_seconds=4, segment_type="mpegts",
)  # fmt: skip

FACTS = SourceInfo.model_validate({
    "durationSeconds": 600.5, "container": "mpegts", "sizeBytes": 3_000_000_000,
    "video": {"codec": "h264", "width": 1920, "height": 1080, "fps": 25.0, "frameRate": "25/1",
              "pixelFormat": "yuv420p", "rotation": 0, "interlaced": True, "fieldFirst": "bff",
              "streamIndex": 2},
    "audioStreams": [{"index": 0, "codec": "aac", "channels": 2, "sampleRate": 48000,
                      "language": "en", "title": "Director's \"cut\" — 2", "streamIndex": 0}],
    "startSeconds": 1.4, "videoShortfallSeconds": 0.75,
})  # fmt: skip
SLICE_WITH_FACTS = SLICE.model_copy(update={"source_info": FACTS})
AUDIO_WITH_FACTS = AUDIO.model_copy(update={"source_info": FACTS})


@pytest.mark.parametrize(
    "request_",
    [PROBE, PROBE_WITH_POSTER, RENDITION, SLICE, VIDEO_ONLY, VIDEO_ONLY_SLICE, RETRIED_SLICE,
     AUDIO, SLICE_WITH_FACTS, AUDIO_WITH_FACTS],
)  # fmt: skip
def test_the_worker_reads_back_every_field(
    request_: ProbeArgs | RenditionArgs | AudioArgs,
) -> None:
    assert parsed(request_.argv()) == request_


def test_video_only_rungs_say_so_and_rungs_keep_their_audio_by_default() -> None:
    assert "--no-audio" in VIDEO_ONLY.argv()
    assert "--no-audio" not in RENDITION.argv()
    assert RENDITION.audio


def test_audio_args_defaults_and_the_planned_rendition() -> None:
    default = AudioArgs(source="in.mp4", output="out", name="audio-0", stream=0)
    assert parsed(["audio", "in.mp4", "out", "--name", "audio-0"]) == default
    assert default.bitrate == 128_000
    assert parsed(["audio", "in.mp4", "out", "--name", "audio-0", "--bitrate", "96k"]) == (
        default.model_copy(update={"bitrate": 96_000})
    )
    [mono] = plan_audio_renditions(
        [AudioTrackInfo(index=0, codec="opus", channels=1, sample_rate=48000)]
    )
    planned = AudioArgs.for_rendition(mono, source="in.mp4", output="out", segment_seconds=4)
    assert (planned.name, planned.stream, planned.bitrate, planned.segment_seconds) == (
        "audio-0", 0, 64_000, 4)  # fmt: skip
    assert parsed(planned.argv()) == planned


@pytest.mark.parametrize(
    "update", [{"name": "Audio_0"}, {"name": "720p"}, {"stream": -1}, {"bitrate": 1000}]
)
def test_bad_audio_args_are_refused_on_both_sides(update: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AudioArgs.model_validate({**AUDIO.model_dump(), **update})
    with pytest.raises(SystemExit):
        parsed(AUDIO.model_copy(update=update).argv())


def test_the_defaults_are_the_workers_defaults() -> None:
    """A model left at its defaults asks for what the worker does unasked."""
    poster = ProbeArgs(source="in.mp4", poster=PosterArgs(output="out"))
    assert parsed(["probe", "in.mp4", "out"]) == poster
    rung = RUNG.model_copy(update={"audio_bitrate": 128_000})
    rendition = RenditionArgs(source="in.mp4", output="out", rendition=rung)
    assert parsed(rendition.argv()) == rendition
    unasked = ["rendition", "in.mp4", "out", "--name", "720p", "--height", "720",
               "--video-bitrate", "3100000", "--max-bitrate", "4000000"]  # fmt: skip
    assert parsed(unasked) == rendition


def test_only_a_jobs_command_is_a_request() -> None:
    with pytest.raises(ValueError, match="ladder"):
        parsed(["ladder", "in.mp4", "out"])


def test_a_rung_without_a_cap_is_sent_with_the_cap_the_operator_planned_for() -> None:
    uncapped = RUNG.model_copy(update={"max_bitrate": None})
    request = RenditionArgs(source="in.mp4", output="out", rendition=uncapped)
    read = parsed(request.argv())
    assert isinstance(read, RenditionArgs)
    assert read.rendition.max_bitrate == uncapped.peak_video_bitrate
    assert read == request.model_copy(update={"rendition": RUNG.model_copy(
        update={"max_bitrate": uncapped.peak_video_bitrate})})  # fmt: skip


def test_an_indexed_jobs_pod_takes_its_slice_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator leaves the index out of an Indexed Job's one pod template."""
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    template = SLICE.model_copy(update={"slice_index": None})
    assert "--slice-index" not in template.argv()
    assert parsed(template.argv()) == SLICE.model_copy(update={"slice_index": 3})
    assert parsed(SLICE.argv()) == SLICE  # an explicit index wins


def test_a_slice_length_without_an_index_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    with pytest.raises(SystemExit) as exit_:
        parsed(SLICE.model_copy(update={"slice_index": None}).argv())
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("update", "fragment"),
    [
        ({"slice_seconds": 10}, "multiple of segment seconds"),  # segments are 4 s
        ({"slice_seconds": 0}, "multiple of segment seconds"),
        ({"slice_seconds": None}, "needs slice seconds"),
        ({"slice_index": -1}, "at least 0"),
        ({"slice_seconds": None, "slice_index": None, "done_slices": {1}}, "need slice seconds"),
    ],
)
def test_a_slice_is_whole_segments(update: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        RenditionArgs.model_validate({**SLICE.model_dump(), **update})
    with pytest.raises(SystemExit):  # the worker refuses the same command line
        parsed(SLICE.model_copy(update=update).argv())
