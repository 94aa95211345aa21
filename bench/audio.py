"""How fast an audio rendition is made, and how soon its start is stored.

Makes a source with a small video stream and stereo sound (pink noise under a tone, which an
AAC encoder finds harder than a pure tone), then runs `hlsforge-worker audio` on it and
reports: wall seconds, CPU seconds of the worker and its FFmpeg (user + sys), both as
multiples of real time, and when the first segments were published (the first `published`
line), which is what the first playable moment waits for.

    .venv/bin/python bench/audio.py [--minutes 10] [--source FILE]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def make_source(path: Path, seconds: int) -> None:
    subprocess.run([
        *FFMPEG,
        "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=15:duration={seconds}",
        "-f", "lavfi", "-i",
        f"anoisesrc=color=pink:amplitude=0.2:sample_rate=48000:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-filter_complex", "[1:a][2:a]amerge=inputs=2,pan=stereo|c0=c0+0.5*c1|c1=0.7*c0+c1[a]",
        "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40",
        "-c:a", "aac", "-b:a", "256k", str(path),
    ], check=True)  # fmt: skip


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--source", type=Path, help="an existing source instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlsforge-bench-audio-") as work:
        seconds = round(args.minutes * 60)
        source = args.source or Path(work) / "source.mp4"
        if args.source is None:
            make_source(source, seconds)
        cpu_before, started = children_cpu(), time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-m", "transcode_worker", "audio", str(source),
             str(Path(work) / "out"), "--name", "audio-0", "--termination-log", "/dev/null"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        first_published: float | None = None
        result: dict[str, object] = {}
        assert worker.stdout is not None
        for line in worker.stdout:
            event = json.loads(line)
            if event["event"] == "published" and first_published is None:
                first_published = time.monotonic() - started
                first_seconds = event["seconds"]
            elif event["event"] in ("done", "error"):
                result = event
        worker.wait()
        wall, cpu = time.monotonic() - started, children_cpu() - cpu_before
    if result.get("event") != "done":
        raise SystemExit(f"the worker failed: {result}")
    done = result["result"]
    assert isinstance(done, dict)
    duration = float(done["durationSeconds"])
    print(f"audio rendition of {duration:.0f} s of stereo sound ({done['segmentCount']} segments,"
          f" {done['averageBandwidth']} b/s average)")  # fmt: skip
    print(f"wall {wall:6.1f} s   {duration / wall:5.1f}x real time")
    print(f"CPU  {cpu:6.1f} s   {duration / cpu:5.1f}x real time per core")
    if first_published is not None:
        print(f"first published after {first_published:.1f} s ({first_seconds} s of sound)")


if __name__ == "__main__":
    main()
