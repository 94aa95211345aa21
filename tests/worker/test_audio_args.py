"""The FFmpeg arguments of an audio-only rendition, and video-only rungs (pure)."""

from fractions import Fraction
from pathlib import Path

import pytest

from transcode_worker.audio import AudioEncoding, audio_filters, build_audio_args, sound_seconds
from transcode_worker.encode import Packaging, build_encode_args
from transcode_worker.probe import ProbedSource
from transcode_worker.slicing import plan_slice, slice_grid
from videotranscode import DEFAULT_LADDER, AudioTrackInfo, SourceInfo, VideoStreamInfo

TRACKS = [
    AudioTrackInfo(index=0, codec="aac", channels=6, sample_rate=48000, language="en"),
    AudioTrackInfo(index=1, codec="mp3", channels=1, sample_rate=44100, default=True),
]


def probed() -> ProbedSource:
    info = SourceInfo(
        duration_seconds=12.5,
        container="mov,mp4,m4a,3gp,3g2,mj2",
        size_bytes=1000,
        video=VideoStreamInfo(
            codec="h264",
            width=1280,
            height=720,
            fps=30,
            frame_rate="30/1",
            pixel_format="yuv420p",
            rotation=0,
        ),
        audio_streams=TRACKS,
    )
    return ProbedSource(Path("in.mov"), info, video_index=0, audio_index=1)


def value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_one_audio_stream_to_aac_on_the_video_timeline() -> None:
    args = build_audio_args(probed(), AudioEncoding(0, 128_000, 6, "fmp4"), Path("/o/audio-0"))
    assert value(args, "-map") == "0:a:0"  # by position among the audio streams
    assert {"-vn", "-sn", "-dn"} <= set(args)
    assert value(args, "-c:a") == "aac"
    assert value(args, "-b:a") == "128000"
    assert value(args, "-ac") == "2"  # 5.1 is downmixed to stereo
    assert value(args, "-ar") == "48000"
    assert value(args, "-output_ts_offset") == "1.000000"  # as every video rung
    assert value(args, "-hls_time") == "6"
    assert value(args, "-hls_fmp4_init_filename") == "init.mp4"
    assert value(args, "-hls_segment_options") == "movflags=+frag_discont"
    assert value(args, "-hls_segment_filename") == "/o/audio-0/seg_%05d.m4s"
    assert args[-1] == "/o/audio-0/index.m3u8"
    assert "-ss" not in args
    assert "-t" not in args
    assert value(args, "-af") == audio_filters(12.5)


def test_mono_stays_mono_and_mpegts_has_no_init_section() -> None:
    args = build_audio_args(probed(), AudioEncoding(1, 64_000, 4, "mpegts"), Path("/o/audio-1"))
    assert value(args, "-map") == "0:a:1"
    assert value(args, "-ac") == "1"
    assert value(args, "-hls_segment_filename") == "/o/audio-1/seg_%05d.ts"
    assert "-hls_fmp4_init_filename" not in args
    assert value(args, "-hls_time") == "4"


def test_late_short_or_gappy_sound_is_made_to_span_the_whole_source() -> None:
    assert audio_filters(12.5) == (
        "aresample=async=1:first_pts=0,apad=whole_dur=12.500000,atrim=end=12.500000"
    )


FRAME = 1024 / 48000


@pytest.mark.parametrize(
    ("duration", "segment", "expected"),
    [
        (7.0, 6, 7.0),  # a last segment of 1 s: kept whole
        (12.5, 6, 12.5),
        (0.5, 6, 0.5),  # one segment
        (5.99, 6, 5.99),  # cut 1 falls at 281 frames of sound (5.9947 s), after the end
        (6.0, 6, 281 * FRAME),  # 0.005 s past that cut: ended there
        (599.99, 6, 28124 * FRAME),  # 0.011 s past cut 100
        (600.01, 6, 28124 * FRAME),
        (600.05, 6, 600.05),  # 3 frames past: a (short) last segment of its own
        (3.0, 1, 140 * FRAME),
    ],
)
def test_no_last_segment_of_just_a_frame_or_two(
    duration: float, segment: int, expected: float
) -> None:
    assert sound_seconds(duration, segment) == pytest.approx(expected, abs=1e-9)
    assert duration - sound_seconds(duration, segment) < 3 * FRAME


def test_video_only_rungs_whole_or_sliced() -> None:
    source = probed()
    with_audio = build_encode_args(source, DEFAULT_LADDER[:2], Packaging(), Path("/o"), "fast")
    assert with_audio.count("-c:a") == 2
    silent = build_encode_args(
        source, DEFAULT_LADDER[:2], Packaging(), Path("/o"), "fast", audio=False
    )
    assert "-c:a" not in silent
    assert "0:1" not in silent
    time_slice = plan_slice(1, slice_grid(6, Packaging(), Fraction(30)))
    sliced = build_encode_args(source, DEFAULT_LADDER[:1], Packaging(), Path("/o"), "fast",
                               time_slice=time_slice, audio=False)  # fmt: skip
    assert "-c:a" not in sliced
    assert "0:1" not in sliced
