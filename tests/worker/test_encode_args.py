import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from transcode_worker.encode import (
    Packaging,
    TimeSlice,
    build_encode_args,
    output_size,
)
from transcode_worker.interlace import Scan
from transcode_worker.probe import ProbedSource
from transcode_worker.slicing import is_sound_tail, plan_slice, slice_grid
from videotranscode import DEFAULT_LADDER, SourceInfo, VideoStreamInfo
from videotranscode.slicing import gop_frames, output_frame_rate


@pytest.mark.parametrize(
    ("source", "short_side", "expected"),
    [
        ((1920, 1080), 720, (1280, 720)),
        ((1920, 1080), 540, (960, 540)),
        ((1080, 1920), 720, (720, 1280)),  # portrait stays portrait; height means short side
        ((1279, 719), 360, (640, 360)),
        ((1279, 719), 720, (1278, 718)),  # never upscale, even sides not above the source
        ((640, 360), 1080, (640, 360)),
        ((853, 480), 240, (426, 240)),
    ],
)
def test_output_size(source: tuple[int, int], short_side: int, expected: tuple[int, int]) -> None:
    assert output_size(*source, short_side) == expected


def test_frame_rate_is_kept_up_to_60_then_halved() -> None:
    assert output_frame_rate(Fraction(30000, 1001)) == Fraction(30000, 1001)
    assert output_frame_rate(Fraction(60)) == 60
    assert output_frame_rate(Fraction(120)) == 60
    assert output_frame_rate(Fraction(240)) == 60
    assert gop_frames(Fraction(30000, 1001), 2) == 60
    assert gop_frames(Fraction(25), 2) == 50


def test_packaging_needs_segments_made_of_whole_gops() -> None:
    assert Packaging(6, 2).segment_extension == "m4s"
    assert Packaging(6, 2, "mpegts").segment_extension == "ts"
    with pytest.raises(ValueError, match="multiple"):
        Packaging(5, 2)


def probed(audio_index: int | None = 1) -> ProbedSource:
    info = SourceInfo(
        duration_seconds=10,
        container="mov,mp4,m4a,3gp,3g2,mj2",
        size_bytes=1000,
        video=VideoStreamInfo(
            codec="h264",
            width=1920,
            height=1080,
            fps=29.97,
            frame_rate="30000/1001",
            pixel_format="yuv420p10le",
            rotation=0,
        ),
        audio=None,
    )
    return ProbedSource(Path("in.mp4"), info, video_index=2, audio_index=audio_index)


def test_one_decode_feeds_every_rung_with_aligned_fixed_gops() -> None:
    args = build_encode_args(probed(), DEFAULT_LADDER[:2], Packaging(6, 2), Path("/o"), "fast")
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:2]fps=30000/1001,format=yuv420p,split=2[s0][s1]")
    assert "[s0]scale=640:360,setsar=1[v0]" in graph
    assert "[s1]scale=960:540,setsar=1[v1]" in graph
    assert args.count("-i") == 1
    assert args.count("-g") == 2
    assert args[args.index("-g") + 1] == "60" == args[args.index("-keyint_min") + 1]
    assert args[args.index("-sc_threshold") + 1] == "0"
    assert args[args.index("-maxrate") + 1] == str(DEFAULT_LADDER[0].peak_video_bitrate)
    assert args.count("0:1") == 2  # the audio stream is mapped by index into each rung
    assert "/o/360p/index.m3u8" in args
    assert "/o/540p/index.m3u8" in args
    assert args[args.index("-hls_playlist_type") + 1] == "vod"


def test_audio_less_source_maps_no_audio() -> None:
    args = build_encode_args(
        probed(audio_index=None), DEFAULT_LADDER[:1], Packaging(), Path("/o"), "fast"
    )
    assert "-c:a" not in args


def test_an_interlaced_source_is_deinterlaced_before_anything_else() -> None:
    source = dataclasses.replace(probed(), scan=Scan(interlaced=True, field_first="bff"))
    args = build_encode_args(source, DEFAULT_LADDER[:2], Packaging(6, 2), Path("/o"), "fast")
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith(
        "[0:2]bwdif=mode=send_frame:parity=bff:deint=all,fps=30000/1001,format=yuv420p,split=2"
    )
    progressive = build_encode_args(probed(), DEFAULT_LADDER[:1], Packaging(), Path("/o"), "fast")
    assert "bwdif" not in progressive[progressive.index("-filter_complex") + 1]


def test_pictures_that_stop_early_are_held_to_the_end() -> None:
    held = dataclasses.replace(probed(), video_shortfall_seconds=4.0)
    args = build_encode_args(held, DEFAULT_LADDER[:1], Packaging(), Path("/o"), "fast")
    graph = args[args.index("-filter_complex") + 1]
    assert "fps=30000/1001,tpad=stop_mode=clone:stop_duration=4.000,format=yuv420p" in graph
    ordinary = dataclasses.replace(probed(), video_shortfall_seconds=0.04)  # an audio frame
    args = build_encode_args(ordinary, DEFAULT_LADDER[:1], Packaging(), Path("/o"), "fast")
    assert "tpad" not in args[args.index("-filter_complex") + 1]


def test_a_time_slice_seeks_trims_and_keeps_its_place_in_the_rung() -> None:
    info = probed().info
    video = info.video.model_copy(update={"frame_rate": "30/1"})
    thirty = dataclasses.replace(probed(), info=info.model_copy(update={"video": video}))
    # Slice 2 of 12 s slices after the 6 s lead-in: [18 s, 30 s), segments 3 and 4.
    time_slice = plan_slice(2, slice_grid(12, Packaging(6, 2), Fraction(30)))
    assert time_slice.start == 18
    assert time_slice.seconds == 12
    assert time_slice.first_segment == 3
    args = build_encode_args(
        thirty, DEFAULT_LADDER[:1], Packaging(6, 2), Path("/o"), "fast", time_slice=time_slice
    )
    assert time_slice.warmup == 1  # encoded from 17 s, for x264's rate control
    # Decoding starts at the keyframe before that (the worker reads where it is), on the
    # source's own timeline; the pictures of [17 s, 30 s) are kept, frames 510 to 899.
    at_keyframe = dataclasses.replace(time_slice, decode_from=15.5)
    args = build_encode_args(
        thirty, DEFAULT_LADDER[:1], Packaging(6, 2), Path("/o"), "fast", time_slice=at_keyframe
    )
    assert args[:6] == ["-copyts", "-start_at_zero", "-ss", "15.500000", "-i", "in.mp4"]
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:2]fps=30,trim=start_pts=510:end_pts=900,format=yuv420p,")
    assert "-t" not in args
    assert args[args.index("-output_ts_offset") + 1] == "1.000000"  # TIMESTAMP_HEADROOM
    # The slice's first frame (the 31st encoded) is a keyframe; the 30 packets before it,
    # first in decoding order with a closed GOP, are dropped; the sound is [18 s, 30 s).
    assert args[args.index("-force_key_frames") + 1] == "expr:eq(n,30)"
    assert args[args.index("-bsf:v") + 1] == "noise=drop=lt(n\\,30)"
    assert args[args.index("-af") + 1] == "atrim=start=18.000000:end=30.000000"
    # Without decode_from (a container with an index, MP4), the demuxer seeks to that
    # keyframe itself, and every frame from it goes to the filters, not only from 23 s.
    assert args_of(time_slice)[:5] == [
        "-copyts", "-start_at_zero", "-noaccurate_seek", "-ss", "17.000000",
    ]  # fmt: skip
    silent = dataclasses.replace(thirty, audio_index=None)
    assert "-af" not in build_encode_args(
        silent, DEFAULT_LADDER[:1], Packaging(6, 2), Path("/o"), "fast", time_slice=time_slice
    )
    assert args[args.index("-start_number") + 1] == "3"
    assert args[args.index("-hls_fmp4_init_filename") + 1] == "init_2.mp4"
    assert args[args.index("-hls_segment_options") + 1] == "movflags=+frag_discont"
    assert args[-1] == "/o/360p/slice_2.m3u8"
    whole = build_encode_args(thirty, DEFAULT_LADDER[:1], Packaging(6, 2), Path("/o"), "fast")
    assert not {"-ss", "-copyts", "-t", "-start_number", "-bsf:v"} & set(whole)
    assert "trim" not in whole[whole.index("-filter_complex") + 1]
    # A whole rung is on the same timeline as the slices (and the audio renditions).
    assert whole[whole.index("-output_ts_offset") + 1] == "1.000000"
    assert whole[whole.index("-hls_segment_options") + 1] == "movflags=+frag_discont"


def args_of(time_slice: TimeSlice) -> list[str]:
    return build_encode_args(
        probed(), DEFAULT_LADDER[:1], Packaging(6, 2), Path("/o"), "fast", time_slice=time_slice
    )


def test_the_first_slice_needs_no_warmup_and_is_timed_as_the_whole_rung() -> None:
    time_slice = plan_slice(0, slice_grid(12, Packaging(6, 2), Fraction(30000, 1001)))
    assert time_slice.warmup == 0
    args = args_of(time_slice)
    assert args[:2] == ["-i", "in.mp4"]
    # No -copyts: where the video starts a little after the sound, FFmpeg repeats the first
    # picture back to 0 in the unsliced rung, and so in the slice that starts it.
    assert not {"-copyts", "-ss", "-force_key_frames", "-bsf:v"} & set(args)
    assert "trim=start_pts=0:end_pts=180," in args[args.index("-filter_complex") + 1]
    assert args[args.index("-af") + 1] == "atrim=start=0.000000:end=6.006000"


def test_only_the_last_slice_may_be_the_sound_alone() -> None:
    rate = Fraction(30)
    grid = slice_grid(2, Packaging(2, 2), rate)
    last = plan_slice(3, grid)  # [6 s, 8 s)
    assert is_sound_tail(last, 4, rate, pictures_end=5.967)  # a phone's 33 ms
    assert is_sound_tail(last, 4, rate, pictures_end=6.02)  # within a frame
    assert not is_sound_tail(last, 4, rate, pictures_end=6.1)  # pictures there: not empty
    assert not is_sound_tail(plan_slice(2, grid), 4, rate, pictures_end=3.0)


def test_the_warmup_is_whole_frames_at_ntsc_rates() -> None:
    ntsc = plan_slice(1, slice_grid(6, Packaging(6, 2), Fraction(30000, 1001)))
    assert ntsc.warmup == Fraction(30 * 1001, 30000)  # 30 frames, 1.001 s
    assert ntsc.encode_start == ntsc.start - ntsc.warmup


def test_slices_are_whole_gops_of_the_output_frame_rate() -> None:
    # 29.97 fps: a 2 s GOP is 60 frames (2.002 s), so slices start on that grid.
    grid = slice_grid(6, Packaging(6, 2), Fraction(30000, 1001))
    ntsc = plan_slice(1, grid)
    assert ntsc.start == ntsc.seconds == Fraction(180 * 1001, 30000)
    assert grid.count(18.0) == 3  # 6.006 + 6.006 + 5.988
    assert grid.count(18.1) == 4
    with pytest.raises(ValueError, match="multiple"):
        slice_grid(8, Packaging(6, 2), Fraction(30))


def test_a_short_lead_in_slice_comes_first_then_whole_slices() -> None:
    grid = slice_grid(30, Packaging(6, 2), Fraction(30))
    spans = [(float(grid.start(i)), float(plan_slice(i, grid).seconds)) for i in range(3)]
    assert spans == [(0.0, 6.0), (6.0, 30.0), (36.0, 30.0)]
    assert [grid.first_segment(i) for i in range(3)] == [0, 1, 6]
    assert (grid.count(6.0), grid.count(36.0), grid.count(36.1)) == (1, 2, 3)
    assert grid.durations(70.0) == [6.0, 30.0, 30.0, 4.0]
    # Slices one segment long have no shorter lead-in.
    same = slice_grid(6, Packaging(6, 2), Fraction(30))
    assert [float(same.start(i)) for i in range(3)] == [0.0, 6.0, 12.0]
