"""Audio as its own renditions, on real media: every audio stream probed, each encoded once
(whole, never sliced) beside video-only rungs, on the rungs' timeline, and a master whose
audio group every variant uses."""

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import m3u8
import pytest
from helpers import ffmpeg, make_clip, run_worker

from videotranscode import master_playlist_errors, target_duration_errors

SECONDS = 7  # over one 6 s segment: two segments, so there is a join to look at
RATE = 48_000
AAC_FRAME = 1024 / RATE  # seconds of sound in one AAC frame
HEADROOM = 1.0  # TIMESTAMP_HEADROOM: source time t is presentation time t + 1 s in every output


def ffprobe_json(target: Path | str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", *args, str(target)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def done(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    last: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    assert last["event"] == "done"
    result: dict[str, Any] = last["result"]
    return result


@pytest.fixture(scope="module")
def two_languages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Video with two sound tracks: English at 440 Hz (stereo, 44.1 kHz), then German at
    660 Hz (mono), which the file marks as the default."""
    path = tmp_path_factory.mktemp("media") / "two-languages.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=30:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate={RATE}:duration={SECONDS}",
        "-map", "0", "-map", "1", "-map", "2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-ac:a:0", "2", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=deu",
        "-disposition:a:0", "0", "-disposition:a:1", "default", str(path),
    )  # fmt: skip
    return path


def playlist(directory: Path) -> m3u8.M3U8:
    return m3u8.load(str(directory / "index.m3u8"))


def joined(directory: Path, tmp: Path) -> Path:
    """The init section and every segment in order: the stream as a player reads it."""
    parsed = playlist(directory)
    parts = [directory / p.uri for p in parsed.segment_map] + [
        directory / s.uri for s in parsed.segments
    ]
    target = tmp / f"{directory.name}-joined{parts[-1].suffix}"
    target.write_bytes(b"".join(part.read_bytes() for part in parts))
    return target


def audio_packets(path: Path | str) -> list[tuple[float, float]]:
    """(pts, duration) of each audio packet, in presentation order."""
    packets = ffprobe_json(path, "-select_streams", "a:0",
                           "-show_entries", "packet=pts_time,duration_time")["packets"]  # fmt: skip
    return [(float(p["pts_time"]), float(p.get("duration_time", AAC_FRAME))) for p in packets]


def segment_starts(directory: Path) -> list[float]:
    """Where each segment's sound starts, read from the segment itself (init + segment)."""
    parsed = playlist(directory)
    init = b"".join((directory / p.uri).read_bytes() for p in parsed.segment_map)
    starts = []
    for number, segment in enumerate(parsed.segments):
        part = directory.parent / f"probe-{directory.name}-{number}{Path(segment.uri).suffix}"
        part.write_bytes(init + (directory / segment.uri).read_bytes())
        starts.append(audio_packets(part)[0][0])
        part.unlink()
    return starts


def streams(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ffprobe_json(path, "-show_streams")["streams"]
    return found


def test_probe_lists_every_audio_stream_with_language_and_default(
    two_languages: Path, tmp_path: Path
) -> None:
    result = done(run_worker("probe", str(two_languages), "--termination-log",
                             str(tmp_path / "term.json")))  # fmt: skip
    tracks = result["source"]["audioStreams"]
    assert [(t["index"], t["language"], t["default"], t["channels"]) for t in tracks] == [
        (0, "en", False, 2),
        (1, "de", True, 1),
    ]
    assert [(t["codec"], t["sampleRate"]) for t in tracks] == [("aac", 44100), ("aac", RATE)]
    assert result["source"]["audio"]["channels"] == 2  # the first stream, as before


@pytest.mark.parametrize("segment_type", ["fmp4", "mpegts"])
def test_one_audio_stream_encoded_whole_on_the_video_timeline(
    two_languages: Path, tmp_path: Path, segment_type: str
) -> None:
    out = tmp_path / "out"
    term = tmp_path / "term.json"
    run = run_worker("audio", str(two_languages), str(out), "--name", "audio-1", "--stream", "1",
                     "--bitrate", "96000", "--segment-seconds", "6", "--segment-type",
                     segment_type, "--termination-log", str(term))  # fmt: skip
    result = done(run)
    assert json.loads(term.read_text())["result"] == result
    assert result["name"] == "audio-1"
    assert result["stream"] == 1
    assert (result["language"], result["displayName"], result["default"]) == ("de", "Deutsch", True)
    assert result["codecs"] == "mp4a.40.2"
    assert result["channels"] == 1  # mono stays mono
    assert result["playlistKey"] == str(out / "audio-1" / "index.m3u8")
    progress = [json.loads(line) for line in run.stdout.splitlines()[:-1]]
    assert progress[-1] == {**progress[-1], "event": "progress", "rendition": "audio-1",
                            "percent": 100.0}  # fmt: skip

    rendition = out / "audio-1"
    parsed = playlist(rendition)
    assert parsed.is_endlist
    assert target_duration_errors((rendition / "index.m3u8").read_text()) == []
    assert result["segmentCount"] == len(parsed.segments) == 2
    whole = joined(rendition, tmp_path)
    [stream] = streams(whole)
    assert (stream["codec_type"], stream["codec_name"], stream["profile"]) == ("audio", "aac", "LC")
    assert int(stream["sample_rate"]) == RATE
    assert 0.8 * 96_000 < result["averageBandwidth"] < 1.3 * 96_000

    packets = audio_packets(whole)
    # The first sound of the source plays at the same time as the first picture of every video
    # rung (source time + 1 s): the one packet before it is the encoder's priming.
    first_sound = packets[1][0] if segment_type == "fmp4" else packets[0][0] + AAC_FRAME
    assert abs(first_sound - HEADROOM - _offset(segment_type)) < 1e-3
    # Continuous: each packet starts where the one before ends, across the segment join.
    for (start, duration), (following, _) in itertools.pairwise(packets):
        assert following == pytest.approx(start + duration, abs=1e-4)
    # All of the source's sound and not more than one AAC frame of padding.
    end = packets[-1][0] + packets[-1][1] - first_sound
    assert SECONDS <= end + 1e-4 <= SECONDS + AAC_FRAME + 1e-4
    # Segments start within one AAC frame of the video's segment boundaries (every 6 s).
    starts = segment_starts(rendition)
    for number, start in enumerate(starts):
        boundary = HEADROOM + _offset(segment_type) + 6 * number
        assert abs(start - boundary) <= AAC_FRAME + 1e-4, (number, start, boundary)


def _offset(segment_type: str) -> float:
    """MPEG-TS timestamps carry FFmpeg's muxing delay (1.4 s), in video and audio alike."""
    return 1.4 if segment_type == "mpegts" else 0.0


def test_a_video_rungs_first_picture_is_at_the_same_time(
    two_languages: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done(run_worker("rendition", str(two_languages), str(out), "--name", "180p", "--height",
                    "180", "--video-bitrate", "300k", "--no-audio"))  # fmt: skip
    frames = ffprobe_json(joined(out / "180p", tmp_path), "-select_streams", "v:0",
                          "-read_intervals", "%+#1", "-show_entries", "frame=pts_time")  # fmt: skip
    assert float(frames["frames"][0]["pts_time"]) == pytest.approx(HEADROOM, abs=1e-3)


@pytest.mark.parametrize("sliced", [False, True])
def test_no_audio_rungs_are_video_only(two_languages: Path, tmp_path: Path, sliced: bool) -> None:
    out = tmp_path / "out"
    slicing = ["--slice-seconds", "6", "--slice-index", "0"] if sliced else []
    run = run_worker("rendition", str(two_languages), str(out), "--name", "180p", "--height",
                     "180", "--video-bitrate", "300k", "--no-audio", *slicing)  # fmt: skip
    result = done(run)
    codecs = (result["rendition"] if sliced else result)["codecs"]
    assert codecs.startswith("avc1.")
    assert "mp4a" not in codecs
    segments = sorted((out / "180p").glob("seg_*.m4s"))
    assert segments
    init = sorted((out / "180p").glob("init*.mp4"))[0]
    part = tmp_path / "part.mp4"
    part.write_bytes(init.read_bytes() + segments[0].read_bytes())
    assert [s["codec_type"] for s in streams(part)] == ["video"]


def test_ladder_video_only_rungs_and_one_audio_rendition_per_stream(
    two_languages: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = done(run_worker("ladder", str(two_languages), str(out), "--renditions",
                             "144p:144:150k,180p:180:300k"))  # fmt: skip
    text = (out / "master.m3u8").read_text()
    assert master_playlist_errors(text) == []
    master = m3u8.loads(text)
    media = [(m.type, m.group_id, m.name, m.language, m.default, m.uri) for m in master.media]
    assert media == [
        ("AUDIO", "aac", "English", "en", "NO", "audio-0/index.m3u8"),
        ("AUDIO", "aac", "Deutsch", "de", "YES", "audio-1/index.m3u8"),
    ]
    assert len(master.playlists) == 2
    audio_peak = max(a["bandwidth"] for a in result["audio"])
    by_name = {r["name"]: r for r in result["renditions"]}
    for variant in master.playlists:
        info = variant.stream_info
        assert info.audio == "aac"
        assert info.codecs.endswith(",mp4a.40.2")
        rung = by_name[variant.uri.split("/")[0]]
        assert info.bandwidth == rung["bandwidth"] + audio_peak
        assert [s["codec_type"] for s in streams(joined(out / rung["name"], tmp_path))] == ["video"]
    for entry in master.media:
        directory = out / entry.uri.split("/")[0]
        assert [s["codec_type"] for s in streams(joined(directory, tmp_path))] == ["audio"]
    assert [a["name"] for a in result["audio"]] == ["audio-0", "audio-1"]


def test_a_silent_source_keeps_video_only_variants(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "silent.mp4", size="320x180", seconds=2, audio=False)
    out = tmp_path / "out"
    result = done(run_worker("ladder", str(source), str(out), "--renditions", "144p:144:150k"))
    assert result["audio"] == []
    text = (out / "master.m3u8").read_text()
    assert "#EXT-X-MEDIA" not in text
    assert "AUDIO=" not in text
    assert master_playlist_errors(text) == []
    assert not list(out.glob("audio-*"))
    bad = run_worker("audio", str(source), str(out), "--name", "audio-0", "--stream", "0")
    assert bad.returncode == 2
    assert "no audio stream 0" in json.loads(bad.stdout.splitlines()[-1])["message"]


def test_no_such_audio_stream_is_bad_input(two_languages: Path, tmp_path: Path) -> None:
    term = tmp_path / "term.json"
    run = run_worker("audio", str(two_languages), str(tmp_path / "out"), "--name", "audio-2",
                     "--stream", "2", "--termination-log", str(term))  # fmt: skip
    assert run.returncode == 2
    error = json.loads(term.read_text())
    assert (error["event"], error["reason"], error["exitCode"]) == ("error", "BadInput", 2)
    assert "it has 2" in error["message"]


def silences(path: Path) -> list[tuple[float, float | None]]:
    """(start, end) of each stretch of silence FFmpeg's silencedetect finds, in seconds of
    the decoded stream."""
    run = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af",
         "silencedetect=noise=-50dB:d=0.2", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: list[tuple[float, float | None]] = []
    for line in run.stderr.splitlines():
        if "silence_start:" in line:
            found.append((float(line.split("silence_start:")[1].split()[0]), None))
        elif "silence_end:" in line:
            found[-1] = (found[-1][0], float(line.split("silence_end:")[1].split()[0]))
    return found


def test_sound_that_starts_late_and_stops_early_spans_the_video(tmp_path: Path) -> None:
    """A phone recording: the sound starts 1.5 s after the pictures and stops at 4 s of 7.
    The rendition is the whole 7 s: silence, the sound in its place, silence."""
    source = tmp_path / "phone.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=30:duration={SECONDS}",
        "-itsoffset", "1.5",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={RATE}:duration=2.5",
        "-map", "0", "-map", "1", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", str(source),
    )  # fmt: skip
    tracks = streams(source)
    assert float(tracks[1]["start_time"]) == pytest.approx(1.5, abs=0.05)  # really late
    out = tmp_path / "out"
    result = done(run_worker("audio", str(source), str(out), "--name", "audio-0"))
    assert result["segmentCount"] == 2
    assert result["durationSeconds"] == pytest.approx(SECONDS, abs=2 * AAC_FRAME)
    whole = joined(out / "audio-0", tmp_path)
    packets = audio_packets(whole)
    first_sound = packets[1][0]
    assert first_sound == pytest.approx(HEADROOM, abs=1e-3)
    assert packets[-1][0] + packets[-1][1] - first_sound == pytest.approx(SECONDS, abs=AAC_FRAME)
    decoded = tmp_path / "decoded.wav"  # decoded from the start of the file's timeline
    ffmpeg("-i", str(whole), str(decoded))
    (lead_start, lead_end), (tail_start, tail_end) = silences(decoded)
    assert lead_start == pytest.approx(0, abs=0.05)
    assert lead_end == pytest.approx(1.5, abs=0.05)
    assert tail_start == pytest.approx(4.0, abs=0.05)
    assert tail_end is None or tail_end == pytest.approx(SECONDS, abs=0.05)


def test_no_last_segment_of_a_single_frame(tmp_path: Path) -> None:
    """The encoder's priming frame moves the audio's cuts one frame early: a 3 s source in 1 s
    segments would end with a segment of one 21 ms frame (and a BANDWIDTH inflated by its
    header); its sound ends at the cut instead."""
    source = make_clip(tmp_path / "three.mp4", size="160x90", seconds=3)
    out = tmp_path / "out"
    result = done(run_worker("audio", str(source), str(out), "--name", "audio-0",
                             "--segment-seconds", "1"))  # fmt: skip
    durations = [segment.duration for segment in playlist(out / "audio-0").segments]
    assert len(durations) == result["segmentCount"] == 3
    assert min(durations) > 1 - AAC_FRAME
    assert sum(durations) == pytest.approx(3, abs=AAC_FRAME)
