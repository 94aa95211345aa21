"""What a worker would report, without running FFmpeg: for benchmarks and queue tests
where only the operator's behaviour matters."""

import json

from hlsforge_dev.jobs import PodRun
from transcode_worker.cli import read_request
from videotranscode import (
    AudioArgs,
    AudioRenditionResult,
    AudioStreamInfo,
    AudioTrackInfo,
    ProbeArgs,
    RenditionResult,
    SourceInfo,
    VideoStreamInfo,
    media_playlist,
)

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
    audio_streams=[
        AudioTrackInfo(
            index=0, codec="aac", channels=2, sample_rate=48000, language="en", default=True
        ),
    ],
)


def worker_message(run: PodRun) -> str:
    """The termination message `hlsforge-worker` would leave for this pod's arguments."""
    request = read_request(run.args)
    if isinstance(request, ProbeArgs):
        result: dict[str, object] = {"source": SOURCE.model_dump(by_alias=True)}
    elif isinstance(request, AudioArgs):
        result = AudioRenditionResult(
            name=request.name,
            stream=request.stream,
            language="en",
            display_name="English",
            default=request.stream == 0,
            channels=2,
            bandwidth=round(request.bitrate * 1.1),
            average_bandwidth=request.bitrate,
            codecs="mp4a.40.2",
            segment_count=10,
            duration_seconds=60.0,
            playlist_key=f"{request.output}/{media_playlist(request.name)}",
        ).model_dump(by_alias=True)
    else:
        rung = request.rendition
        result = RenditionResult(
            name=rung.name,
            width=rung.height * 16 // 9 // 2 * 2,
            height=rung.height,
            frame_rate=30.0,
            bandwidth=round(rung.video_bitrate * 1.2),
            average_bandwidth=rung.video_bitrate,
            codecs="avc1.64001f,mp4a.40.2" if request.audio else "avc1.64001f",
            segment_count=10,
            duration_seconds=60.0,
            playlist_key=f"{request.output}/{media_playlist(rung.name)}",
        ).model_dump(by_alias=True)
    return json.dumps({"event": "done", "command": run.args[0], "result": result})
