"""Time-slice benchmark (issue 12): one rung sliced against the same rung in one pod.

Makes a 1080p30 video-only source (testsrc2 with temporal noise, ~15 Mb/s) twice in one
generation: with a 2 s GOP and with a 10 s GOP. A sliced worker seeks with an input `-ss`,
which decodes from the source keyframe before the seek point, so the source's keyframes sit
one frame after each multiple of the GOP: the worst case, every slice decodes almost a whole
source GOP it then drops. For each source, in the same run:
  (w) `hlsforge-worker rendition` of the 1080p rung of the default ladder, unsliced,
  (s) the same rung as slices of 30 s, each a separate worker process (as pods are),
      stitched with the contract's `stitch_media_playlist`.
CPU seconds of child processes (user + sys, FFmpeg included). Quality, on the first source
only (the output pictures do not depend on the source's GOP): SSIM of (w) and of (s) against
the source, frame by frame (FFmpeg's ssim filter), over the whole video and around every
join. Then one slice of each other rung of the ladder, for a scaling table of a 2-hour ladder.

As the operator does, each source is probed once (`hlsforge-worker probe`, not counted) and
every rendition run, sliced or not, is given what the probe reported (`--source-info`), so it
does not probe again; `--probe-in-every-pod` measures the old way (each run probes itself).

    .venv/bin/python bench/slicing.py [--seconds 120] [--slice-seconds 30] [--gops 2,10]
"""

import argparse
import heapq
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from transcode_worker.encode import Packaging
from transcode_worker.settings import WorkerSettings
from transcode_worker.slicing import WARMUP_SECONDS
from videotranscode import (
    DEFAULT_LADDER,
    MEDIA_PLAYLIST,
    RenditionSpec,
    SliceResult,
    SourceInfo,
    slice_result,
    stitch_media_playlist,
)
from videotranscode.slicing import SliceGrid
from videotranscode.worker import SOURCE_INFO_FLAG

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
FRAME_RATE = 30
SOURCE_BITRATE = "15M"
RUNG = DEFAULT_LADDER[-1]  # 1080p
GOALS = {2: 1.05, 10: 1.15}  # CPU ratio sliced / unsliced, by the source's GOP seconds
SSIM_GOAL = 0.002  # stitched within this of the unsliced rung, whole video
JOIN_DROP_GOAL = 0.01  # no frame at a join this far below its neighbours
HOURS = 2  # the scaling table's video


@dataclass(frozen=True)
class Run:
    cpu: float
    output: str  # the worker's last stdout line


def worker() -> list[str]:
    script = Path(sys.executable).parent / "hlsforge-worker"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "transcode_worker"]


def make_sources(work: Path, seconds: int, gops: Sequence[int]) -> dict[int, Path]:
    """One generated picture sequence, encoded once per GOP length (video only)."""
    lavfi = f"testsrc2=size=1920x1080:rate={FRAME_RATE}:duration={seconds},noise=alls=6:allf=t"
    graph = f"[0:v]split={len(gops)}" + "".join(f"[g{gop}]" for gop in gops)
    args = [*FFMPEG, "-f", "lavfi", "-i", lavfi, "-filter_complex", graph]
    paths = {}
    for gop in gops:
        paths[gop] = work / f"source-gop{gop}.mp4"
        # Keyframes one frame after each multiple of the GOP, and nowhere else.
        keyframes = f"expr:gte(t,n_forced*{gop}+{1 / FRAME_RATE:.6f})"
        args += ["-map", f"[g{gop}]", "-c:v", "libx264", "-preset", "ultrafast",
                 "-b:v", SOURCE_BITRATE, "-maxrate", "20M", "-bufsize", "20M",
                 "-pix_fmt", "yuv420p", "-g", "100000", "-sc_threshold", "0",
                 "-force_key_frames", keyframes, "-an", str(paths[gop])]  # fmt: skip
    subprocess.run(args, check=True)
    return paths


def rung_args(rung: RenditionSpec) -> list[str]:
    return ["--name", rung.name, "--height", str(rung.height),
            "--video-bitrate", str(rung.video_bitrate),
            "--max-bitrate", str(rung.peak_video_bitrate)]  # fmt: skip


def timed(command: list[str], env: dict[str, str]) -> Run:
    """Child CPU seconds of one process (and what it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(cpu, done.stdout.strip().splitlines()[-1])


def probe(source: Path, env: dict[str, str]) -> list[str]:
    """What the probe Job reports of the source, as the operator passes it on (the probe
    runs once per source however the renditions are cut, so its CPU is not counted)."""
    done = subprocess.run([*worker(), "probe", str(source)], check=True, capture_output=True,
                          text=True, env=env)  # fmt: skip
    info = SourceInfo.model_validate(json.loads(done.stdout.splitlines()[-1])["result"]["source"])
    return [SOURCE_INFO_FLAG, info.model_dump_json(by_alias=True, exclude_none=True)]


def encode_whole(
    source: Path, out: Path, rung: RenditionSpec, env: dict[str, str], facts: list[str]
) -> Run:
    return timed([*worker(), "rendition", str(source), str(out), *rung_args(rung), *facts], env)


def encode_slice(
    source: Path, out: Path, rung: RenditionSpec, env: dict[str, str], *, seconds: int,
    index: int, facts: list[str],
) -> Run:  # fmt: skip
    command = [*worker(), "rendition", str(source), str(out), *rung_args(rung),
               "--slice-seconds", str(seconds), "--slice-index", str(index), *facts]  # fmt: skip
    return timed(command, env)


def stitch(rung_dir: Path, count: int) -> None:
    slices = [
        SliceResult.model_validate_json((rung_dir / slice_result(i)).read_text())
        for i in range(count)
    ]
    (rung_dir / MEDIA_PLAYLIST).write_text(stitch_media_playlist(slices, slice_count=count))


def whole_stream(rung_dir: Path) -> str:
    """The rung's init section and segments, in playlist order, as one FFmpeg input."""
    lines = (rung_dir / MEDIA_PLAYLIST).read_text().splitlines()
    parts = [line.split('URI="')[1].split('"')[0] for line in lines if "EXT-X-MAP" in line][:1]
    parts += [line for line in lines if line and not line.startswith("#")]
    return "concat:" + "|".join(str(rung_dir / part) for part in parts)


def frame_ssim(outputs: Sequence[Path], source: Path, work: Path) -> list[list[float]]:
    """SSIM (All) of each frame of each rung directory against the source, one decode."""
    n = len(outputs)
    graph = [f"[{n}:v]setpts=PTS-STARTPTS,split={n}" + "".join(f"[r{i}]" for i in range(n))]
    stats = [work / f"ssim{i}.txt" for i in range(n)]
    for i, path in enumerate(stats):
        graph.append(f"[{i}:v]setpts=PTS-STARTPTS[m{i}];[m{i}][r{i}]ssim=stats_file={path}")
    args = [*FFMPEG]
    for rung_dir in outputs:
        args += ["-i", whole_stream(rung_dir)]
    args += ["-i", str(source), "-filter_complex", ";".join(graph)]
    # Unlabelled, the ssim filters' outputs all go to the one (null) output.
    subprocess.run([*args, "-f", "null", "-"], check=True)
    return [
        [float(line.split("All:")[1].split()[0]) for line in path.read_text().splitlines()]
        for path in stats
    ]


def join_drops(ssim: Sequence[float], joins: Sequence[int], reach: int, gop: int) -> list[float]:
    """At each join, the worst of the frames within `reach` of it: how far its SSIM falls
    below its neighbours, the frames at the same place in the two GOPs on either side (so
    the GOP's own rhythm, a sharp keyframe and softer frames after it, is no drop)."""
    drops = []
    for join in joins:
        worst = -1.0
        for frame in range(join - reach, join + reach):
            neighbours = [
                frame + m * gop for m in (-2, -1, 1, 2) if 0 <= frame + m * gop < len(ssim)
            ]
            worst = max(worst, statistics.fmean(ssim[i] for i in neighbours) - ssim[frame])
        drops.append(worst)
    return drops


def worse_than_unsliced(
    sliced: Sequence[float], whole: Sequence[float], joins: Sequence[int], reach: int
) -> list[float]:
    """At each join, the most any frame within `reach` of it is worse sliced than unsliced."""
    return [max(whole[i] - sliced[i] for i in range(join - reach, join + reach)) for join in joins]


def makespan(durations: Sequence[float], slots: int) -> float:
    """Longest first onto the first free slot (pods start as slots free up)."""
    free = [0.0] * slots
    for duration in sorted(durations, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


@dataclass(frozen=True)
class Measured:
    whole: dict[int, float]  # CPU seconds of the unsliced rung, by source GOP
    sliced: dict[int, list[float]]  # CPU seconds of each slice, by source GOP
    ssim_whole: list[float]  # per frame, against the source (the first source)
    ssim_sliced: list[float]
    slice_cpu: dict[str, float]  # a middle slice of each rung


def measure(options: argparse.Namespace, gops: list[int], count: int) -> Measured:
    with tempfile.TemporaryDirectory(prefix="hlsforge-bench-") as tmp:
        work = Path(tmp)
        (work / "scratch").mkdir()
        env = {**os.environ, "HLSFORGE_SCRATCH_DIR": str(work / "scratch")}
        print("making the sources …", flush=True)
        sources = make_sources(work, options.seconds, gops)
        facts = {
            gop: [] if options.probe_in_every_pod else probe(source, env)
            for gop, source in sources.items()
        }
        whole: dict[int, float] = {}
        sliced: dict[int, list[float]] = {}
        for gop, source in sources.items():
            print(f"{gop} s GOP: unsliced …", flush=True)
            whole[gop] = encode_whole(source, work / f"whole{gop}", RUNG, env, facts[gop]).cpu
            sliced[gop] = []
            for index in range(count):
                print(f"{gop} s GOP: slice {index} …", flush=True)
                run = encode_slice(source, work / f"sliced{gop}", RUNG, env,
                                   seconds=options.slice_seconds, index=index,
                                   facts=facts[gop])  # fmt: skip
                sliced[gop].append(run.cpu)
            stitch(work / f"sliced{gop}" / RUNG.name, count)
        first = gops[0]
        print(f"{first} s GOP: SSIM against the source …", flush=True)
        ssim_whole, ssim_sliced = frame_ssim(
            [work / f"whole{first}" / RUNG.name, work / f"sliced{first}" / RUNG.name],
            sources[first],
            work,
        )
        middle = min(1, count - 1)  # a slice with a join before it, as most of a long video's
        others: dict[str, float] = {RUNG.name: statistics.fmean(sliced[first][middle:])}
        for rung in DEFAULT_LADDER[:-1]:
            print(f"{first} s GOP: slice {middle} of {rung.name} …", flush=True)
            run = encode_slice(sources[first], work / "others", rung, env,
                               seconds=options.slice_seconds, index=middle,
                               facts=facts[first])  # fmt: skip
            others[rung.name] = run.cpu
    return Measured(whole, sliced, ssim_whole, ssim_sliced, others)


def print_cpu(measured: Measured, gops: list[int], count: int, slice_seconds: int) -> None:
    print(f"\nCPU seconds (user + sys of the worker and FFmpeg), {count} slices: a lead-in, "
          f"then {slice_seconds} s")  # fmt: skip
    print(f"{'source GOP':<12}{'unsliced':>10}{'sliced':>9}   per slice{'':<18}{'ratio':>7}   goal")
    for gop in gops:
        whole, sliced = measured.whole[gop], measured.sliced[gop]
        ratio = sum(sliced) / whole
        goal = GOALS.get(gop)
        verdict = "" if goal is None else f"≤ {goal:.2f} {'met' if ratio <= goal else 'NOT met'}"
        per_slice = " ".join(f"{cpu:.1f}" for cpu in sliced)
        print(f"{gop:>4} s{'':<6}{whole:>10.1f}{sum(sliced):>9.1f}   {per_slice:<27}{ratio:>7.3f}"
              f"   {verdict}")  # fmt: skip


def print_quality(
    measured: Measured, options: argparse.Namespace, source_gop: int, joins: list[int]
) -> None:
    ssim_whole, ssim_sliced = measured.ssim_whole, measured.ssim_sliced
    mean_whole, mean_sliced = statistics.fmean(ssim_whole), statistics.fmean(ssim_sliced)
    difference = mean_sliced - mean_whole
    verdict = "met" if abs(difference) <= SSIM_GOAL else "NOT met"
    print(f"\nSSIM against the source ({source_gop} s-GOP source, {len(ssim_whole)} frames)")
    print(f"unsliced {mean_whole:.5f}   stitched {mean_sliced:.5f}   difference {difference:+.5f}"
          f"   goal within {SSIM_GOAL} {verdict}")  # fmt: skip
    reach, gop = options.reach, FRAME_RATE * Packaging().gop_seconds
    drops_sliced = join_drops(ssim_sliced, joins, reach, gop)
    drops_whole = join_drops(ssim_whole, joins, reach, gop)
    worse = worse_than_unsliced(ssim_sliced, ssim_whole, joins, reach)
    print(f"frames within {reach} of a join: the worst drop below its neighbours (the frames "
          f"{gop} and {2 * gop} before and after it), and the most a frame is worse than "
          f"unsliced")  # fmt: skip
    print(f"{'join at':<10}{'stitched':>10}{'unsliced':>10}{'worse':>9}")
    for join, drop_s, drop_w, loss in zip(joins, drops_sliced, drops_whole, worse, strict=True):
        print(f"{join / FRAME_RATE:>7.2f} s{drop_s:>10.4f}{drop_w:>10.4f}{loss:>9.4f}")
    worst = max(drops_sliced, default=0.0)
    print(f"worst join drop {worst:.4f}   goal ≤ {JOIN_DROP_GOAL} "
          f"{'met' if worst <= JOIN_DROP_GOAL else 'NOT met'}")  # fmt: skip
    # A dip the unsliced rung has at the same frame (x264 settling in the first seconds of an
    # encode, where the lead-in's join is) is the content's, not the join's.
    excess = max((s - w for s, w in zip(drops_sliced, drops_whole, strict=True)), default=0.0)
    print(f"worst join drop beyond the unsliced rung's own at that frame {excess:.4f}   "
          f"(≤ {JOIN_DROP_GOAL}: {'yes' if excess <= JOIN_DROP_GOAL else 'no'})")  # fmt: skip
    if options.keep is not None:
        options.keep.mkdir(parents=True, exist_ok=True)
        frames = {"joins": joins, "unsliced": ssim_whole, "stitched": ssim_sliced}
        (options.keep / "ssim.json").write_text(json.dumps(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=120, help="source length")
    parser.add_argument("--slice-seconds", type=int, default=30)
    parser.add_argument("--gops", default="2,10", help="the sources' GOP seconds, comma-separated")
    parser.add_argument("--reach", type=int, default=60, help="frames either side of a join")
    parser.add_argument("--keep", type=Path, help="write the per-frame SSIM here (JSON)")
    parser.add_argument("--cores-per-pod", type=int, default=2)
    parser.add_argument("--node-cores", type=int, default=8)
    parser.add_argument("--pod-start", type=float, default=10, help="seconds before FFmpeg runs")
    parser.add_argument("--download-mb-per-s", type=float, default=200, help="per pod")
    parser.add_argument("--source-mbit-per-s", type=float, default=10, help="2-hour source")
    parser.add_argument("--source-gop", type=float, default=2, help="2-hour source, seconds")
    parser.add_argument(
        "--read-ahead-mb", type=float, default=12,
        help="a ranged slice's bytes read but not used (socket buffers of abandoned requests)",
    )  # fmt: skip
    parser.add_argument(
        "--probe-in-every-pod", action="store_true",
        help="the old way: no --source-info; every run probes, every slice downloads it all",
    )  # fmt: skip
    options = parser.parse_args()
    gops = [int(gop) for gop in options.gops.split(",")]
    packaging = Packaging()
    grid = SliceGrid(options.slice_seconds, packaging.segment_seconds, packaging.gop_seconds,
                     Fraction(FRAME_RATE))  # fmt: skip
    count = grid.count(options.seconds)
    joins = [round(grid.start(i) * FRAME_RATE) for i in range(1, count)]
    preset = WorkerSettings().x264_preset
    print(f"{options.seconds} s 1080p{FRAME_RATE} video-only source ({SOURCE_BITRATE}b/s), "
          f"rung {RUNG.name} ({RUNG.video_bitrate // 1000} kb/s), x264 preset {preset}, "
          f"{count} slices ({grid.lead_in_seconds} s, then {options.slice_seconds} s), "
          f"source GOPs {gops} s, "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    measured = measure(options, gops, count)
    print_cpu(measured, gops, count, options.slice_seconds)
    print_quality(measured, options, gops[0], joins)
    print_scaling(options, measured.slice_cpu, grid)


def print_scaling(
    options: argparse.Namespace, slice_cpu: dict[str, float], grid: SliceGrid
) -> None:
    seconds = HOURS * 3600
    slices = grid.count(seconds)  # each costing what a whole slice does, the lead-in too
    length = grid.length(1)
    pods_per_node = options.node_cores // options.cores_per_pod
    mb_per_s = options.source_mbit_per_s / 8
    download = mb_per_s * seconds / options.download_mb_per_s
    if options.probe_in_every_pod:  # every slice pod downloads the whole source
        read, how = download, "fetching the whole source"
    else:  # a slice reads its range (warm-up and the source GOP before it) through a URL
        span = float(length + WARMUP_SECONDS) + options.source_gop
        read = (mb_per_s * span + options.read_ahead_mb) / options.download_mb_per_s
        how = (f"reading {span:g} s of it and {options.read_ahead_mb:g} MB of read-ahead, "
               f"counted before encoding though FFmpeg reads as it encodes")  # fmt: skip
    print(
        f"\nScaling: a {HOURS}-hour 1080p30 video, ladder {', '.join(slice_cpu)} (video only; "
        f"audio excluded), {slices} slices of {options.slice_seconds} s per rung"
    )
    print(
        "measured CPU seconds of a slice after a join (the sliced rung: their mean): "
        + ", ".join(f"{name} {cpu:.1f}" for name, cpu in slice_cpu.items())
    )
    print(f"assumed: nodes of {options.node_cores} cores, {options.cores_per_pod} cores per pod "
          f"({pods_per_node} pods per node), x264 using a pod's cores fully; "
          f"{options.pod_start:g} s to start a pod; a {options.source_mbit_per_s:g} Mb/s source "
          f"at {options.download_mb_per_s:g} MB/s: a rung's pod downloads it all "
          f"({download:.0f} s), a slice's pod {how} ({read:.1f} s); pods start as slots free up, "
          f"longest first; stitching and upload not counted")  # fmt: skip
    sliced = [options.pod_start + read + cpu / options.cores_per_pod
              for cpu in slice_cpu.values()] * slices  # fmt: skip
    whole = [options.pod_start + download + cpu * slices / options.cores_per_pod
             for cpu in slice_cpu.values()]  # fmt: skip
    print(f"{'nodes':>5}{'pods':>6}{'one pod per rung':>18}{'sliced':>10}{'speed-up':>10}")
    for nodes in (1, 4, 16, 64):
        slots = nodes * pods_per_node
        one, many = makespan(whole, slots), makespan(sliced, slots)
        print(f"{nodes:>5}{slots:>6}{one / 3600:>16.2f} h{many / 3600:>8.2f} h{one / many:>9.1f}x")


if __name__ == "__main__":
    main()
