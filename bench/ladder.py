"""Decode-once benchmark: the worker's ladder against separate rungs and plain FFmpeg.

Makes a 1080p30 source with audio, then times, in the same run:
  (a) `hlsforge-worker ladder SRC OUT` (the default 360p/540p/720p/1080p ladder),
  (b) the same four rungs as four sequential `hlsforge-worker rendition` runs,
  (c) one plain FFmpeg command that decodes once and encodes the four rungs with the
      worker's encoder settings (`-var_stream_map`): the decode-once reference.
Wall seconds, and CPU seconds of all child processes (user + sys, FFmpeg included).

    .venv/bin/python bench/ladder.py [--seconds 30] [--repeat 1]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from transcode_worker.encode import INIT_SEGMENT, Packaging
from transcode_worker.settings import WorkerSettings
from videotranscode import DEFAULT_LADDER, MASTER_PLAYLIST, MEDIA_PLAYLIST
from videotranscode.slicing import gop_frames

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
FRAME_RATE = 30
GOALS = {"a/c": 1.05, "b/c": 1.35}

Commands = Callable[[Path], list[list[str]]]  # output directory → the commands to time


@dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float


def make_source(path: Path, seconds: int) -> Path:
    """A moving 1080p30 test pattern with a sine tone, encoded as fast as possible."""
    lavfi = f"duration={seconds}"
    subprocess.run(
        [*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FRAME_RATE}:{lavfi}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:{lavfi}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def worker() -> list[str]:
    script = Path(sys.executable).parent / "hlsforge-worker"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "transcode_worker"]


def ladder_run(source: Path) -> Commands:
    return lambda out: [[*worker(), "ladder", str(source), str(out)]]


def rendition_runs(source: Path) -> Commands:
    return lambda out: [
        [*worker(), "rendition", str(source), str(out), "--name", rung.name,
         "--height", str(rung.height), "--video-bitrate", str(rung.video_bitrate),
         "--max-bitrate", str(rung.peak_video_bitrate)]
        for rung in DEFAULT_LADDER
    ]  # fmt: skip


def reference_run(source: Path) -> Commands:
    """One FFmpeg: decode once, split, and encode like transcode_worker/encode.py does."""
    packaging = Packaging()
    gop = str(gop_frames(Fraction(FRAME_RATE), packaging.gop_seconds))
    rungs = list(DEFAULT_LADDER)
    graph = [f"[0:v]split={len(rungs)}{''.join(f'[s{i}]' for i in range(len(rungs)))}"]
    graph += [f"[s{i}]scale=-2:{rung.height},setsar=1[v{i}]" for i, rung in enumerate(rungs)]
    args = ["-i", str(source), "-filter_complex", ";".join(graph)]
    args += [arg for i in range(len(rungs)) for arg in ("-map", f"[v{i}]")]
    args += ["-map", "0:a"] * len(rungs)
    args += ["-c:v", "libx264", "-preset", WorkerSettings().x264_preset, "-profile:v", "high",
             "-g", gop, "-keyint_min", gop, "-sc_threshold", "0"]  # fmt: skip
    for i, rung in enumerate(rungs):
        peak = rung.peak_video_bitrate
        args += [f"-b:v:{i}", str(rung.video_bitrate), f"-maxrate:v:{i}", str(peak),
                 f"-bufsize:v:{i}", str(2 * peak)]  # fmt: skip
    args += ["-c:a", "aac", "-b:a", str(rungs[0].audio_bitrate), "-ac", "2", "-ar", "48000"]
    args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    streams = " ".join(f"v:{i},a:{i},name:{rung.name}" for i, rung in enumerate(rungs))
    return lambda out: [
        [*FFMPEG, *args, "-f", "hls", "-hls_time", str(packaging.segment_seconds),
         "-hls_playlist_type", "vod", "-hls_flags", "independent_segments",
         "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", INIT_SEGMENT,
         "-hls_segment_filename", str(out / "%v" / "seg_%05d.m4s"),
         "-master_pl_name", MASTER_PLAYLIST, "-var_stream_map", streams,
         str(out / "%v" / MEDIA_PLAYLIST)]
    ]  # fmt: skip


def timed(commands: Commands, out: Path, env: dict[str, str]) -> Cost:
    """Wall and child CPU seconds of running `commands` one after the other."""
    out.mkdir()
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    for command in commands(out):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Cost(wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=30, help="source length (≥ 30 advised)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; the median")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hlsforge-bench-") as tmp:
        work = Path(tmp)
        (work / "scratch").mkdir()
        env = {**os.environ, "HLSFORGE_SCRATCH_DIR": str(work / "scratch")}
        print(f"making a {options.seconds} s 1080p{FRAME_RATE} source …", flush=True)
        source = make_source(work / "source.mp4", options.seconds)
        cases = {
            "a": ("hlsforge-worker ladder", ladder_run(source)),
            "b": ("4 x hlsforge-worker rendition", rendition_runs(source)),
            "c": ("ffmpeg decode-once reference", reference_run(source)),
        }
        runs: dict[str, list[Cost]] = {key: [] for key in cases}
        for repetition in range(options.repeat):  # interleaved, so drift hits every case
            for key, (label, commands) in cases.items():
                print(f"run {repetition + 1}/{options.repeat}: ({key}) {label} …", flush=True)
                runs[key].append(timed(commands, work / "out", env))

    cost = {
        key: Cost(statistics.median(c.wall for c in costs), statistics.median(c.cpu for c in costs))
        for key, costs in runs.items()
    }
    preset = WorkerSettings().x264_preset
    print(f"\n{options.seconds} s 1080p{FRAME_RATE} source, x264 preset {preset}, "
          f"{os.cpu_count()} CPUs, median of {options.repeat}")  # fmt: skip
    print(f"{'case':<36}{'wall s':>9}{'CPU s':>9}{'x realtime':>12}")
    for key, (label, _) in cases.items():
        speed = options.seconds / cost[key].wall
        print(f"({key}) {label:<32}{cost[key].wall:>9.1f}{cost[key].cpu:>9.1f}{speed:>11.2f}x")
    print(f"\n{'ratio':<8}{'wall':>7}{'CPU':>7}   goal")
    for ratio, goal in GOALS.items():
        wall = cost[ratio[0]].wall / cost["c"].wall
        cpu = cost[ratio[0]].cpu / cost["c"].cpu
        verdict = "met" if max(wall, cpu) <= goal else "NOT met"
        print(f"{ratio:<8}{wall:>7.3f}{cpu:>7.3f}   ≤ {goal:.2f} {verdict}")


if __name__ == "__main__":
    main()
