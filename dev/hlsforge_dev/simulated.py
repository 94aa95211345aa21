"""What a worker would report, without running FFmpeg: for benchmarks and queue tests
where only the operator's behaviour matters."""

import json

from hlsforge_dev.jobs import PodRun
from videotranscode import AudioStreamInfo, RenditionResult, SourceInfo, VideoStreamInfo

SOURCE = SourceInfo(
    duration_seconds=60.0,
    container="mov,mp4,m4a,3gp,3g2,mj2",
    size_bytes=10_000_000,
    video=VideoStreamInfo(
        codec="h264",
        width=1920,
        height=1080,
        fps=30.0,
        frame_rate="30/1",
        pixel_format="yuv420p",
        rotation=0,
    ),
    audio=AudioStreamInfo(codec="aac", channels=2, sample_rate=48000),
)


def _option(args: tuple[str, ...], name: str) -> str:
    return args[args.index(name) + 1]


def worker_message(run: PodRun) -> str:
    """The termination message `hlsforge-worker` would leave for this pod's arguments."""
    command = run.args[0]
    if command == "probe":
        result: dict[str, object] = {"source": SOURCE.model_dump(by_alias=True)}
    else:
        height = int(_option(run.args, "--height"))
        name = _option(run.args, "--name")
        bitrate = int(_option(run.args, "--video-bitrate"))
        result = RenditionResult(
            name=name,
            width=height * 16 // 9 // 2 * 2,
            height=height,
            frame_rate=30.0,
            bandwidth=round(bitrate * 1.2),
            average_bandwidth=bitrate,
            codecs="avc1.64001f,mp4a.40.2",
            segment_count=10,
            duration_seconds=60.0,
            playlist_key=f"{run.args[2]}/{name}/index.m3u8",
        ).model_dump(by_alias=True)
    return json.dumps({"event": "done", "command": command, "result": result})
