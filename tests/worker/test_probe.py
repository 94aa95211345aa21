import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import ClipFactory
from helpers import ffmpeg, run_worker

from transcode_worker.errors import BadInputError
from transcode_worker.probe import parse_probe, poster_size


def video_stream(**overrides: Any) -> dict[str, Any]:
    stream = {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920,
              "height": 1080, "avg_frame_rate": "30000/1001", "pix_fmt": "yuv420p"}  # fmt: skip
    return {**stream, **overrides}


def probe_json(*streams: dict[str, Any], fmt: str = "mov,mp4,m4a,3gp,3g2,mj2") -> dict[str, Any]:
    return {
        "streams": list(streams),
        "format": {"format_name": fmt, "duration": "12.5", "size": "999"},
    }


def test_parse_probe_reads_display_size_rate_and_audio() -> None:
    audio = {
        "index": 1,
        "codec_type": "audio",
        "codec_name": "aac",
        "channels": 2,
        "sample_rate": "48000",
    }
    info = parse_probe(probe_json(video_stream(), audio))
    assert (info.video.width, info.video.height, info.video.fps) == (1920, 1080, 29.97)
    assert info.video.frame_rate == "30000/1001"
    assert info.audio is not None
    assert info.audio.sample_rate == 48000
    assert (info.duration_seconds, info.size_bytes) == (12.5, 999)


def test_parse_probe_applies_rotation_and_pixel_aspect() -> None:
    rotated = video_stream(side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}])
    info = parse_probe(probe_json(rotated))
    assert (info.video.width, info.video.height, info.video.rotation) == (1080, 1920, 270)
    anamorphic = video_stream(width=720, height=576, sample_aspect_ratio="64:45")
    assert parse_probe(probe_json(anamorphic)).video.width == 1024


def test_parse_probe_skips_cover_art_and_rejects_images() -> None:
    cover = video_stream(disposition={"attached_pic": 1}, codec_name="mjpeg")
    with pytest.raises(BadInputError, match="no video stream"):
        parse_probe(probe_json(cover, fmt="mp3"))
    with pytest.raises(BadInputError, match="still image"):
        parse_probe(probe_json(video_stream(codec_name="png"), fmt="png_pipe"))
    with pytest.raises(BadInputError, match="frame rate"):
        parse_probe(probe_json(video_stream(avg_frame_rate="0/0", r_frame_rate="0/0")))


def test_poster_size_keeps_aspect_and_never_upscales() -> None:
    assert poster_size(1920, 1080, 640) == (640, 360)
    assert poster_size(1080, 1920, 640) == (360, 640)
    assert poster_size(320, 240, 640) == (320, 240)
    assert poster_size(1920, 1080, 320) == (320, 180)


def mean_luma(jpeg: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-f", "lavfi", f"movie={jpeg},signalstats",
         "-show_entries", "frame_tags=lavfi.signalstats.YAVG", "-of", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(json.loads(out.stdout)["frames"][0]["tags"]["lavfi.signalstats.YAVG"])


def test_probe_reports_metadata_and_writes_a_poster_past_a_black_opening(
    clip: ClipFactory, tmp_path: Path
) -> None:
    # 10 s that open with 3 s of black: 10 % in is still black, the poster must not be.
    picture = clip("picture.mp4", size="1280x720", seconds=7, audio=False)
    source = tmp_path / "fade-in.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=1280x720:rate=30:duration=3", "-i", str(picture),
           "-f", "lavfi", "-i", "sine=duration=10",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(source))  # fmt: skip
    out = tmp_path / "out"
    run = run_worker("probe", str(source), str(out), "--termination-log", str(tmp_path / "t.json"))
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout.splitlines()[-1])
    info = done["result"]["source"]
    assert info["durationSeconds"] == pytest.approx(10, abs=0.1)
    assert info["container"].startswith("mov,mp4")
    assert info["sizeBytes"] == source.stat().st_size
    assert info["video"] == {
        "codec": "h264", "width": 1280, "height": 720, "fps": 30.0, "frameRate": "30/1",
        "pixelFormat": "yuv420p", "rotation": 0, "interlaced": False, "fieldFirst": None,
        "streamIndex": 0,
    }  # fmt: skip
    assert info["audio"] == {"codec": "aac", "channels": 1, "sampleRate": 44100}
    # What the rendition pods are given instead of probing again.
    assert [track["streamIndex"] for track in info["audioStreams"]] == [1]
    assert info["startSeconds"] == 0
    assert info["videoShortfallSeconds"] == pytest.approx(0, abs=0.1)
    poster = out / "poster.jpg"
    assert done["result"]["posterKey"] == str(poster)
    assert mean_luma(poster) > 40  # black is 16
    dims = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0",
         str(poster)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert dims == "640,360"
    assert json.loads((tmp_path / "t.json").read_text()) == done


def test_probe_without_output_writes_no_poster(clip: ClipFactory, tmp_path: Path) -> None:
    run = run_worker("probe", str(clip(seconds=2)))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])["result"]
    assert "posterKey" not in result
    assert result["source"]["audio"]["codec"] == "aac"
