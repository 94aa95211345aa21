"""Time to first playable: `make dev`'s stack (2 worker pods at a time on this machine), one
upload through the API, timed from `POST .../complete` to the first moment the master
playlist plays (the resource's `status.playableAt`) and to fully done, with time slices
(`spec.slicing: auto`, the default) and without (the operator's auto threshold raised
above the source's duration: one pod per rendition, as before slicing).

    .venv/bin/python bench/first_playable.py [--seconds 300] [--size 1280x720]
"""

import argparse
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import kubernetes
from hlsforge_dev.loopback import free_port
from hlsforge_dev.stack import DEMO_EMAIL, DEMO_PASSWORD, NAMESPACE, stack

from hlsforge_cli.client import ApiClient
from hlsforge_cli.models import PostUpload
from hlsforge_cli.upload import multipart_upload, post_upload, storage_client
from transcode_api.transcodes import resource_name

GOAL_SECONDS = 20  # issue 12: a 5-minute 720p upload playable within 20 s of `complete`


class Quiet:
    def begin(self, *, total: int, parts: int, done_parts: int, done_bytes: int) -> None: ...
    def sent(self, part: int, size: int, sent: int) -> None: ...
    def part_done(self, part: int) -> None: ...
    def end(self) -> None: ...


@dataclass(frozen=True)
class Timing:
    playable: float  # seconds from complete to playableAt first seen
    done: float  # to Succeeded
    phase_when_playable: str
    slices: int  # per video rendition


def make_source(path: Path, seconds: int, size: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        check=True,
    )  # fmt: skip


def transcode_once(source: Path, data_dir: Path) -> Timing:
    with stack(data_dir=data_dir, port=free_port(), s3_port=free_port()) as running:
        url = running.url
        config = str(data_dir / "kubeconfig")
        client = kubernetes.config.new_client_from_config(config_file=config)  # type: ignore[no-untyped-call]
        custom = kubernetes.client.CustomObjectsApi(client)
        with ApiClient(url) as anonymous:
            token = anonymous.login(DEMO_EMAIL, DEMO_PASSWORD).access_token
        with ApiClient(url, token) as api:
            size = source.stat().st_size
            created = api.create_video(
                title="bench", filename=source.name, content_type="video/mp4", size=size
            )
            with storage_client() as storage:
                if isinstance(created.upload, PostUpload):
                    post_upload(storage, source, created.upload, content_type="video/mp4",
                                listener=Quiet())  # fmt: skip
                else:
                    multipart_upload(api, storage, source, created.video.id, created.upload,
                                     listener=Quiet())  # fmt: skip
            api.complete(created.video.id)
            started = time.monotonic()
        name = resource_name(created.video.id)
        playable: tuple[float, str] | None = None
        deadline = started + 3600
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = custom.get_namespaced_custom_object(
                "hlsforge.dev", "v1alpha1", NAMESPACE, "videotranscodes", name
            )
            status = cast(dict[str, Any], body).get("status") or {}
            if playable is None and status.get("playableAt"):
                playable = (time.monotonic() - started, status["phase"])
            if status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
                break
            time.sleep(0.1)
        if status.get("phase") != "Succeeded" or playable is None:
            raise RuntimeError(f"the transcode did not succeed: {status.get('message')}")
        slices = max((r.get("slices") or 1 for r in status.get("renditions") or []), default=1)
        return Timing(playable[0], time.monotonic() - started, playable[1], slices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="source duration")
    parser.add_argument("--size", default="1280x720", help="source picture size")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hlsforge-bench-") as tmp:
        source = Path(tmp) / "upload.mp4"
        make_source(source, options.seconds, options.size)
        megabytes = source.stat().st_size / 1e6
        print(f"source: {options.seconds} s {options.size} 30 fps H.264 + AAC, {megabytes:.1f} "
              "MB; the make dev stack, 2 worker pods at once")  # fmt: skip
        results = {}
        for mode, threshold in (("sliced (auto)", None), ("unsliced", 10 * options.seconds)):
            if threshold is None:
                os.environ.pop("HLSFORGE_SLICING__AUTO_THRESHOLD_SECONDS", None)
            else:
                os.environ["HLSFORGE_SLICING__AUTO_THRESHOLD_SECONDS"] = str(threshold)
            results[mode] = transcode_once(source, Path(tmp) / mode.split()[0])
            timing = results[mode]
            slices = f"{timing.slices} slice(s) per video rendition"
            print(f"{mode:14s} first playable {timing.playable:6.1f} s (phase "
                  f"{timing.phase_when_playable}, {slices})   fully done {timing.done:6.1f} s",
                  flush=True)  # fmt: skip
        sliced, whole = results["sliced (auto)"], results["unsliced"]
        print(
            f"first playable: sliced / unsliced = {sliced.playable / whole.playable:.2f}  "
            f"(goal: sliced <= {GOAL_SECONDS} s: "
            f"{'met' if sliced.playable <= GOAL_SECONDS else 'NOT met'})"
        )
        print(f"fully done:     sliced / unsliced = {sliced.done / whole.done:.2f}")


if __name__ == "__main__":
    main()
