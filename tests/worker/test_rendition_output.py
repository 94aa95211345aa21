"""The HLS the worker writes, checked with an independent parser (m3u8) and ffprobe."""

import json
import subprocess
from pathlib import Path

import m3u8
import pytest
from conftest import ClipFactory
from helpers import ffmpeg, run_worker

from videotranscode import target_duration_errors

SMALL_LADDER = "144p:144:150k,240p:240:300k,360p:360:600k,480p:480:900k"


def ffprobe_json(path: Path, *args: str) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", *args, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def media_playlist(rung_dir: Path) -> m3u8.M3U8:
    return m3u8.load(str(rung_dir / "index.m3u8"))


def joined_stream(rung_dir: Path, tmp: Path) -> Path:
    """Init segment + every media segment in order: one file ffprobe can read."""
    playlist = media_playlist(rung_dir)
    parts = [rung_dir / p.uri for p in playlist.segment_map] + [
        rung_dir / s.uri for s in playlist.segments
    ]
    joined = tmp / f"{rung_dir.name}-joined{parts[-1].suffix}"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    return joined


def keyframe_times(path: Path) -> list[float]:
    frames = ffprobe_json(path, "-select_streams", "v:0", "-skip_frame", "nokey",
                          "-show_entries", "frame=pts_time")["frames"]  # fmt: skip
    assert isinstance(frames, list)
    return [round(float(f["pts_time"]), 3) for f in frames]


def playable_segment(rung_dir: Path, playlist: m3u8.M3U8, uri: str, tmp: Path) -> Path:
    """One segment, preceded by the init segment when there is one."""
    part = tmp / f"segment{Path(uri).suffix}"
    init = b"".join((rung_dir / p.uri).read_bytes() for p in playlist.segment_map)
    part.write_bytes(init + (rung_dir / uri).read_bytes())
    return part


def first_frame_is_keyframe(path: Path) -> bool:
    frames = ffprobe_json(path, "-select_streams", "v:0", "-read_intervals", "%+#1",
                          "-show_entries", "frame=key_frame,pict_type")["frames"]  # fmt: skip
    assert isinstance(frames, list)
    return bool(frames[0]["key_frame"] == 1 and frames[0]["pict_type"] == "I")


def media_duration(path: Path) -> float:
    """From the first picture's start to the last one's end. (Not the format's duration: for
    an fMP4 fragment whose tfdt carries its true time, FFmpeg's mov reader reports its end.)"""
    packets = ffprobe_json(path, "-select_streams", "v:0",
                           "-show_entries", "packet=pts_time,duration_time")["packets"]  # fmt: skip
    assert isinstance(packets, list)
    starts = [float(p["pts_time"]) for p in packets]
    ends = [float(p["pts_time"]) + float(p["duration_time"]) for p in packets]
    return max(ends) - min(starts)


def segment_starts(rung_dir: Path) -> list[float]:
    starts, t = [], 0.0
    for segment in media_playlist(rung_dir).segments:
        starts.append(round(t, 3))
        t += segment.duration
    return starts


def video_size(path: Path) -> tuple[int, int]:
    streams = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "stream=width,height")[
        "streams"
    ]
    assert isinstance(streams, list)
    return int(streams[0]["width"]), int(streams[0]["height"])


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_ladder_is_aligned_capped_and_described_by_a_measured_master(
    clip: ClipFactory, tmp_path: Path
) -> None:
    source = clip(size="640x360", seconds=9)
    out = tmp_path / "out"
    run = run_worker("ladder", str(source), str(out), "--renditions", SMALL_LADDER,
                     "--termination-log", str(tmp_path / "term.json"))  # fmt: skip
    assert run.returncode == 0, run.stderr

    master = m3u8.load(str(out / "master.m3u8"))
    uris = sorted(p.uri for p in master.playlists)
    assert uris == ["144p/index.m3u8", "240p/index.m3u8", "360p/index.m3u8"]  # no 480p upscale
    assert (out / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"

    # The sound is in audio renditions, encoded once for every rung (tests/worker/
    # test_audio_renditions.py): each variant's BANDWIDTH covers its video and that audio.
    done = json_lines(run.stdout)[-1]
    assert isinstance(done["result"], dict)
    audio_peak = max(a["bandwidth"] for a in done["result"]["audio"])
    assert [m.uri for m in master.media] == ["audio-0/index.m3u8"]
    keyframes = {}
    for variant in master.playlists:
        rung_dir = out / variant.uri.split("/")[0]
        playlist = media_playlist(rung_dir)
        assert playlist.playlist_type == "vod"
        assert playlist.is_endlist
        assert playlist.is_independent_segments
        assert target_duration_errors((rung_dir / "index.m3u8").read_text()) == []
        joined = joined_stream(rung_dir, tmp_path)
        keyframes[variant.uri] = keyframe_times(joined)
        width, height = video_size(joined)
        assert height <= 360
        info = variant.stream_info
        assert info.resolution == (width, height)
        assert info.codecs.startswith("avc1.64")
        assert info.codecs.endswith(",mp4a.40.2")
        assert info.frame_rate == pytest.approx(30)
        peaks = []
        for segment in playlist.segments:
            part = playable_segment(rung_dir, playlist, segment.uri, tmp_path)
            assert first_frame_is_keyframe(part)
            # BANDWIDTH is the real peak: segment bytes over the duration ffprobe reads.
            peaks.append((rung_dir / segment.uri).stat().st_size * 8 / media_duration(part))
        assert info.bandwidth - audio_peak == pytest.approx(max(peaks), rel=0.10)
        assert info.average_bandwidth <= info.bandwidth
    assert len({tuple(k) for k in keyframes.values()}) == 1  # same keyframe times in every rung

    # The first variant is the highest that most connections sustain: here the top one.
    assert master.playlists[0].uri == "360p/index.m3u8"
    assert done["event"] == "done"
    assert json.loads((tmp_path / "term.json").read_text()) == done


def test_separate_rendition_runs_put_keyframes_on_the_same_times(
    clip: ClipFactory, tmp_path: Path
) -> None:
    # 29.97 fps catches rounding: the GOP must be whole frames in every process.
    source = clip(size="640x360", rate=30, seconds=7, extra=("-r", "30000/1001"))
    out = tmp_path / "out"
    for name, height, bitrate in [("low", 144, "150k"), ("high", 360, "700k")]:
        run = run_worker("rendition", str(source), str(out), "--name", name, "--height",
                         str(height), "--video-bitrate", bitrate)  # fmt: skip
        assert run.returncode == 0, run.stderr
    low = keyframe_times(joined_stream(out / "low", tmp_path))
    high = keyframe_times(joined_stream(out / "high", tmp_path))
    assert low == high
    assert len(low) >= 3  # a keyframe every 2 s, not just the first
    assert segment_starts(out / "low") == segment_starts(out / "high")


@pytest.mark.parametrize(
    ("size", "extra", "expected"),
    [
        ("360x640", (), (240, 426)),  # portrait phone video stays portrait
        ("640x360", ("-metadata:s:v:0", "rotate=90"), (240, 426)),  # rotated by metadata
        ("1279x719", (), (426, 240)),  # odd source sizes
    ],
)
def test_orientation_and_odd_sizes(
    clip: ClipFactory, tmp_path: Path, size: str, extra: tuple[str, ...], expected: tuple[int, int]
) -> None:
    source = clip(size=size, seconds=2)
    if extra:  # FFmpeg 5.1 sets the display matrix only when stream-copying
        rotated = tmp_path / "rotated.mp4"
        ffmpeg("-i", str(source), "-c", "copy", *extra, str(rotated))
        source = rotated
    out = tmp_path / "out"
    run = run_worker("rendition", str(source), str(out), "--name", "240p", "--height", "240",
                     "--video-bitrate", "300k")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert video_size(joined_stream(out / "240p", tmp_path)) == expected
    result = json_lines(run.stdout)[-1]["result"]
    assert isinstance(result, dict)
    assert (result["width"], result["height"]) == expected


def test_audio_less_source_and_mpegts_segments(clip: ClipFactory, tmp_path: Path) -> None:
    source = clip(seconds=3, audio=False)
    out = tmp_path / "out"
    run = run_worker("rendition", str(source), str(out), "--name", "240p", "--height", "240",
                     "--video-bitrate", "300k", "--segment-type", "mpegts")  # fmt: skip
    assert run.returncode == 0, run.stderr
    playlist = media_playlist(out / "240p")
    assert all(s.uri.endswith(".ts") for s in playlist.segments)
    assert not playlist.segment_map
    result = json_lines(run.stdout)[-1]["result"]
    assert isinstance(result, dict)
    assert result["codecs"].startswith("avc1.64")
    assert "mp4a" not in result["codecs"]
    assert result["segmentCount"] == len(playlist.segments)


def test_progress_lines_are_json_monotonic_and_end_at_100(
    clip: ClipFactory, tmp_path: Path
) -> None:
    source = clip(size="1280x720", seconds=6)
    run = run_worker("rendition", str(source), str(tmp_path / "out"), "--name", "720p",
                     "--height", "720", "--video-bitrate", "2000k")  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = json_lines(run.stdout)
    progress = [e for e in events if e["event"] == "progress"]
    assert len(progress) >= 2
    percents = [float(str(e["percent"])) for e in progress]
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert max(percents[:-1]) < 100
    assert all(e["rendition"] == "720p" for e in progress)
    assert events[-1]["event"] == "done"
