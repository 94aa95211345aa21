"""Test helpers: generated media made with the real FFmpeg, and the worker as a process."""

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import socketio
import uvicorn
from hlsforge_dev.loopback import free_port, listening, secantus_command

from transcode_api.settings import ApiSettings
from transcode_operator.publish import VideoStore, video_update
from videotranscode import VideoTranscodeStatus

WORKER = [sys.executable, "-m", "transcode_worker"]
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(
    path: Path,
    *,
    size: str = "640x360",
    rate: int = 30,
    seconds: float = 4,
    audio: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    """An H.264/AAC MP4 of the moving `testsrc2` pattern (and a sine tone)."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    ffmpeg(*inputs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *(["-c:a", "aac"] if audio else []), *extra, str(path))  # fmt: skip
    return path


def blurred_pattern(size: str, rate: int, seconds: float) -> str:
    """The moving `testsrc2` pattern, blurred a little: FFmpeg's `idet` reads its sharpest lines
    as combing even in progressive frames, and tests judge interlacing with `idet`."""
    return f"testsrc2=size={size}:rate={rate}:duration={seconds},gblur=sigma=1.5"


def make_interlaced_clip(
    path: Path,
    *,
    size: str = "720x576",
    seconds: float = 2,
    top_field_first: bool = True,
    encoder: tuple[str, ...] = ("-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ilme+ildct"),
) -> Path:
    """Interlaced 25i video: 50 pictures a second of `blurred_pattern` woven into 25 frames, the
    earlier picture in the top (or bottom) field, so every moving edge is combed. Deinterlaced
    right, frame n is picture 2n of the pattern at 50 pictures a second."""
    weave = "interleave_top,setfield=tff" if top_field_first else "interleave_bottom,setfield=bff"
    ffmpeg("-f", "lavfi", "-i", blurred_pattern(size, 50, seconds),
           "-vf", f"tinterlace={weave}", "-pix_fmt", "yuv420p", *encoder, str(path))  # fmt: skip
    return path


def run_worker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`hlsforge-worker ARGS` as a real process; stdout/stderr captured as text."""
    return subprocess.run(
        [*WORKER, *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )


@contextlib.contextmanager
def mongodb_server() -> Iterator[str]:
    """`$MONGODB_URI` when set (a real mongod), else SecantusDB in memory on loopback."""
    if uri := os.environ.get("MONGODB_URI"):
        yield uri
        return
    port = free_port()
    with listening(secantus_command(port), port):
        yield f"mongodb://127.0.0.1:{port}/"


@contextlib.contextmanager
def serve(app: Any, timeout: float = 30) -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn on a free loopback port, in a thread."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            proxy_headers=False,  # as `hlsforge-api` runs: the app decides
                            timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class Api:
    """A running API: its base URL and the settings it runs with."""

    url: str
    settings: ApiSettings

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


Signup = Callable[..., str]  # `signup()` registers a new user and returns an access token


def create_and_upload(client: httpx.Client, path: Path, content_type: str = "video/mp4") -> str:
    """POST /videos, then the browser's form POST straight to S3; returns the video id."""
    created = client.post("/api/v1/videos", json={
        "title": "My clip", "filename": path.name, "contentType": content_type,
        "size": path.stat().st_size,
    })  # fmt: skip
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["video"]["phase"] == "awaiting_upload"
    upload = body["upload"]
    assert upload["method"] == "post"
    response = httpx.post(upload["url"], data=upload["fields"],
                          files={"file": (path.name, path.read_bytes(), content_type)})  # fmt: skip
    assert response.status_code in (200, 204), response.text
    video_id: str = body["video"]["id"]
    return video_id


def publish_like_the_operator(api: Api, video_id: str, status: dict[str, Any], seq: int) -> None:
    """Write a video's record from a resource `status` with the operator's own writer. (In a
    thread of its own: it runs an event loop, and the caller's thread may be running one.)"""
    store = VideoStore(api.settings.mongodb_uri.get_secret_value(), api.settings.mongodb_database)
    query, update = video_update(namespace="default", name=f"video-{video_id}",
                                 status=VideoTranscodeStatus.model_validate(status),
                                 seq=seq)  # fmt: skip
    try:
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, store.publish(video_id, query, update)).result()
    finally:
        store.close()


def send_like_the_operator(api: Api, event: str, payload: dict[str, Any]) -> None:
    """Send a live event through the API's `/internal` namespace, as the operator does; returns
    once the API has relayed it."""
    assert api.settings.service_token is not None
    operator = socketio.SimpleClient()
    operator.connect(api.url, auth={"token": api.settings.service_token.get_secret_value()},
                     transports=["websocket"], namespace="/internal",
                     wait_timeout=10)  # fmt: skip
    try:
        operator.call(event, payload, timeout=10)  # acknowledged once relayed
    finally:
        operator.disconnect()
