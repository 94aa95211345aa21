"""What a worker would report, without running FFmpeg: for benchmarks and queue tests
where only the operator's behaviour matters."""

import contextlib
import json
import math
from fractions import Fraction
from typing import Any

from hlsforge_dev.indexed import INDEX_ENV
from hlsforge_dev.jobs import PodRun
from transcode_worker.cli import read_request
from videotranscode import (
    AudioArgs,
    AudioRenditionResult,
    AudioStreamInfo,
    AudioTrackInfo,
    ProbeArgs,
    RenditionArgs,
    RenditionResult,
    SliceResult,
    SliceSegment,
    SourceInfo,
    VideoStreamInfo,
    media_playlist,
    slice_result,
)
from videotranscode.slicing import SliceGrid

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
        result = _measured(request).model_dump(by_alias=True)
    return json.dumps({"event": "done", "command": run.args[0], "result": result})


def _measured(request: RenditionArgs) -> RenditionResult:
    rung = request.rendition
    return RenditionResult(
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
    )


def stored_slice(run: PodRun, s3: Any) -> str:
    """For a slice of a sliced rendition (`--slice-seconds`, the index in the pod's env):
    store what the worker would (segments, init section, `slice_<i>.json`) through the boto3
    client `s3`, and return the termination message it would leave. A slice named in
    `--done-slices` and stored already is kept as it is, as the worker keeps it."""
    index = int(run.env[INDEX_ENV])
    request = read_request([*run.args, "--slice-index", str(index)])
    if not isinstance(request, RenditionArgs) or request.slice_seconds is None:
        raise ValueError("not a slice of a rendition")
    length = request.slice_seconds
    bucket, _, prefix = request.output.removeprefix("s3://").partition("/")
    rung = request.rendition.name
    if index in request.done_slices:
        key = f"{prefix}/{rung}/{slice_result(index)}"
        with contextlib.suppress(s3.exceptions.NoSuchKey):
            stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return _slice_done(SliceResult.model_validate_json(stored))
    grid = SliceGrid(length, request.segment_seconds, request.gop_seconds, Fraction(30))
    start = float(grid.start(index))
    seconds = min(float(grid.length(index)), SOURCE.duration_seconds - start)
    durations = [float(min(request.segment_seconds, seconds - offset))
                 for offset in range(0, math.ceil(seconds), request.segment_seconds)]  # fmt: skip
    segments = [
        SliceSegment(uri=f"seg_{grid.first_segment(index) + n:05d}.m4s", duration=duration)
        for n, duration in enumerate(durations)
    ]
    for name in [f"init_{index}.mp4", *(segment.uri for segment in segments)]:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{rung}/{name}", Body=b"media")
    measured = _measured(request).model_copy(
        update={"segment_count": len(segments), "duration_seconds": seconds}
    )
    result = SliceResult(
        rendition=measured,
        index=index, first_pts_seconds=1 + start, init_uri=f"init_{index}.mp4",
        init_sha256="0" * 64, segments=segments,
        result_key=f"{prefix}/{rung}/{slice_result(index)}",
    )  # fmt: skip
    s3.put_object(Bucket=bucket, Key=result.result_key, Body=result.model_dump_json(by_alias=True))
    return _slice_done(result)


def _slice_done(result: SliceResult) -> str:
    summary = result.summary().model_dump(by_alias=True)
    return json.dumps({"event": "done", "command": "rendition", "result": summary})
