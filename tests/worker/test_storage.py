"""The worker against real storage: a moto S3 server and an HTTP server on loopback.

Every test runs `python -m transcode_worker` as a process, so the S3 endpoint, credentials
and scratch directory reach it the way they do in a pod: through environment variables.
"""

import functools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import m3u8
import pytest
from botocore.exceptions import ClientError
from helpers import make_clip, run_worker
from hlsforge_dev.loopback import free_port
from moto.server import ThreadedMotoServer
from mypy_boto3_s3.client import S3Client

from videotranscode import target_duration_errors

SOURCE_BUCKET = "src-bucket"
OUTPUT_BUCKET = "out-bucket"
SOURCE_KEY = "uploads/a.mp4"
SOURCE_URL = f"s3://{SOURCE_BUCKET}/{SOURCE_KEY}"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# One-second segments turn the 3 s clip into several segments, so "every segment" means more
# than one.
SHORT_SEGMENTS = ("--segment-seconds", "1", "--gop-seconds", "1")
RUNG_360 = ("--name", "360p", "--height", "360", "--video-bitrate", "800k")
DUMMY_KEY = "testing"  # moto accepts any credentials
# segment type -> (output prefix, segment file extension, segment Content-Type)
SEGMENT_CASES = {
    "fmp4": ("videos/v1", ".m4s", "video/mp4"),
    "mpegts": ("videos/v1-ts", ".ts", "video/mp2t"),
}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port for the whole module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_KEY,
    )


@pytest.fixture(scope="module")
def source_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s 640x360 H.264/AAC clip, made once for the module."""
    return make_clip(tmp_path_factory.mktemp("clip") / "a.mp4", size="640x360", seconds=3)


@pytest.fixture(scope="module")
def buckets(s3: S3Client, source_clip: Path) -> None:
    """The source bucket holding the clip, and an empty output bucket."""
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    s3.upload_file(str(source_clip), SOURCE_BUCKET, SOURCE_KEY)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def _env(endpoint: str, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=DUMMY_KEY,
        AWS_SECRET_ACCESS_KEY=DUMMY_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        HLSFORGE_SCRATCH_DIR=str(scratch),
    )
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        env.pop(name, None)
    return env


@pytest.fixture
def env(s3_endpoint: str, scratch: Path, buckets: None) -> dict[str, str]:
    return _env(s3_endpoint, scratch)


TRUNCATED = "/truncated.mp4"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files quietly; `/truncated.mp4` promises all of a.mp4 but sends half of it."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != TRUNCATED:
            super().do_GET()
            return
        body = (Path(self.directory) / "a.mp4").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@pytest.fixture(scope="module")
def http_base(source_clip: Path) -> Iterator[str]:
    """An HTTP server on a free loopback port serving the clip's directory."""
    handler = functools.partial(_QuietHandler, directory=str(source_clip.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- helpers ----------------------------------------------------------------------------------


def _events(stdout: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if line.strip():
            event = json.loads(line)
            assert isinstance(event, dict), line
            events.append(event)
    return events


def _final(stdout: str) -> dict[str, Any]:
    """The last JSON line: the `done` or `error` event."""
    events = _events(stdout)
    assert events, "the worker printed no JSON line"
    return events[-1]


def _keys(s3: S3Client, bucket: str, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _text(s3: S3Client, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def _assert_ok(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    final = _final(result.stdout)
    assert final["event"] == "done", final
    return final


# --- S3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("segment_type", sorted(SEGMENT_CASES))
def test_rendition_to_s3(
    s3: S3Client, env: dict[str, str], scratch: Path, tmp_path: Path, segment_type: str
) -> None:
    prefix, extension, segment_content_type = SEGMENT_CASES[segment_type]
    term = tmp_path / "term.json"
    result = run_worker(
        "rendition", SOURCE_URL, f"s3://{OUTPUT_BUCKET}/{prefix}", *RUNG_360, *SHORT_SEGMENTS,
        "--segment-type", segment_type, "--termination-log", str(term),
        env=env,
    )  # fmt: skip
    final = _assert_ok(result)
    playlist_key = f"{prefix}/360p/index.m3u8"
    assert final["result"]["playlistKey"] == playlist_key

    keys = _keys(s3, OUTPUT_BUCKET, f"{prefix}/")
    segments = {key for key in keys if key.endswith(extension)}
    assert playlist_key in keys
    assert len(segments) >= 2, keys
    assert all(key.startswith(f"{prefix}/360p/") for key in keys), keys

    head = s3.head_object(Bucket=OUTPUT_BUCKET, Key=playlist_key)
    assert head["ContentType"] == PLAYLIST_TYPE
    assert head["CacheControl"] == "max-age=60"
    media = set(segments)
    if segment_type == "fmp4":
        media.add(f"{prefix}/360p/init.mp4")
    else:
        assert f"{prefix}/360p/init.mp4" not in keys
    for key in media:
        head = s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)
        assert head["ContentType"] == segment_content_type, key
        assert head["CacheControl"] == "max-age=31536000", key
        assert head["ContentLength"] > 0, key

    # Every URI the stored playlist names is a stored object, and nothing is left unnamed.
    playlist_text = _text(s3, OUTPUT_BUCKET, playlist_key)
    assert target_duration_errors(playlist_text) == []
    playlist = m3u8.loads(playlist_text)
    named = {f"{prefix}/360p/{segment.uri}" for segment in playlist.segments}
    if segment_type == "fmp4":
        [segment_map] = playlist.segment_map
        named.add(f"{prefix}/360p/{segment_map.uri}")
    assert named == media
    assert playlist.is_endlist
    assert final["result"]["segmentCount"] == len(segments)

    # The same event reaches the termination log, and the scratch space is emptied.
    logged = json.loads(term.read_text())
    assert logged == final
    assert logged["event"] == "done"
    assert logged["result"]["playlistKey"] == playlist_key
    assert list(scratch.iterdir()) == []


def test_probe_writes_poster_to_s3(
    s3: S3Client, env: dict[str, str], scratch: Path, tmp_path: Path
) -> None:
    result = run_worker(
        "probe", SOURCE_URL, f"s3://{OUTPUT_BUCKET}/videos/v1",
        "--termination-log", str(tmp_path / "term.json"),
        env=env,
    )  # fmt: skip
    final = _assert_ok(result)
    source = final["result"]["source"]
    assert source["video"]["width"] == 640
    assert source["video"]["height"] == 360
    assert source["video"]["codec"] == "h264"
    assert source["audio"]["codec"] == "aac"
    assert source["durationSeconds"] == pytest.approx(3, abs=0.2)
    assert final["result"]["posterKey"] == "videos/v1/poster.jpg"

    head = s3.head_object(Bucket=OUTPUT_BUCKET, Key="videos/v1/poster.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "max-age=31536000"
    body = s3.get_object(Bucket=OUTPUT_BUCKET, Key="videos/v1/poster.jpg")["Body"].read()
    assert body[:2] == b"\xff\xd8"
    assert list(scratch.iterdir()) == []


def test_ladder_to_s3(s3: S3Client, env: dict[str, str], scratch: Path, tmp_path: Path) -> None:
    prefix = "videos/v2"
    result = run_worker(
        "ladder", SOURCE_URL, f"s3://{OUTPUT_BUCKET}/{prefix}",
        "--renditions", "240p:240:400k,360p:360:800k", *SHORT_SEGMENTS,
        "--termination-log", str(tmp_path / "term.json"),
        env=env,
    )  # fmt: skip
    final = _assert_ok(result)
    assert final["result"]["masterKey"] == f"{prefix}/master.m3u8"
    assert [r["playlistKey"] for r in final["result"]["renditions"]] == [
        f"{prefix}/240p/index.m3u8",
        f"{prefix}/360p/index.m3u8",
    ]

    keys = _keys(s3, OUTPUT_BUCKET, f"{prefix}/")
    head = s3.head_object(Bucket=OUTPUT_BUCKET, Key=f"{prefix}/master.m3u8")
    assert head["ContentType"] == PLAYLIST_TYPE
    assert head["CacheControl"] == "max-age=60"
    assert f"{prefix}/poster.jpg" in keys

    master = m3u8.loads(_text(s3, OUTPUT_BUCKET, f"{prefix}/master.m3u8"))
    assert master.is_variant
    uris = {variant.uri for variant in master.playlists}
    assert uris == {"240p/index.m3u8", "360p/index.m3u8"}
    for uri in uris:
        assert f"{prefix}/{uri}" in keys
        rung = uri.split("/")[0]
        media_text = _text(s3, OUTPUT_BUCKET, f"{prefix}/{uri}")
        assert target_duration_errors(media_text) == []
        media = m3u8.loads(media_text)
        assert media.segments
        for segment in media.segments:
            assert f"{prefix}/{rung}/{segment.uri}" in keys
    assert list(scratch.iterdir()) == []


def test_missing_source_object_is_retryable(
    s3: S3Client, env: dict[str, str], scratch: Path, tmp_path: Path
) -> None:
    missing = f"s3://{SOURCE_BUCKET}/uploads/missing.mp4"
    term = tmp_path / "term.json"
    result = run_worker(
        "rendition", missing, f"s3://{OUTPUT_BUCKET}/videos/missing", *RUNG_360,
        "--termination-log", str(term),
        env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    final = _final(result.stdout)
    assert final["event"] == "error"
    assert final["exitCode"] == 1
    assert missing in final["message"]
    assert missing in result.stderr
    assert json.loads(term.read_text()) == final
    assert _keys(s3, OUTPUT_BUCKET, "videos/missing") == set()
    assert list(scratch.iterdir()) == []


def test_missing_output_bucket_is_retryable(
    s3: S3Client, env: dict[str, str], scratch: Path
) -> None:
    result = run_worker(
        "rendition", SOURCE_URL, "s3://no-such-bucket/videos/v1", *RUNG_360, env=env
    )
    assert result.returncode == 1, result.stderr
    final = _final(result.stdout)
    assert final["event"] == "error"
    assert final["exitCode"] == 1
    assert "s3://no-such-bucket/videos/v1/360p/" in final["message"]
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="no-such-bucket")
    assert list(scratch.iterdir()) == []


def test_unreachable_endpoint_is_retryable(scratch: Path) -> None:
    env = _env(f"http://127.0.0.1:{free_port()}", scratch)
    # The client's Config(retries=...) takes precedence over these; they only keep a client
    # without an explicit retry setting fast.
    env.update(AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")
    started = time.monotonic()
    result = run_worker("probe", SOURCE_URL, env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    final = _final(result.stdout)
    assert final["event"] == "error"
    assert final["exitCode"] == 1
    assert SOURCE_URL in final["message"]
    assert "unexpected failure" not in final["message"]
    assert elapsed < 30
    assert list(scratch.iterdir()) == []


# --- HTTP -------------------------------------------------------------------------------------


def test_rendition_from_http(http_base: str, scratch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = _env("http://127.0.0.1:9", scratch)  # S3 is not involved: a dead endpoint is fine
    result = run_worker(
        "rendition", f"{http_base}/a.mp4", str(out), *RUNG_360, *SHORT_SEGMENTS, env=env
    )
    final = _assert_ok(result)
    playlist = out / "360p" / "index.m3u8"
    assert playlist.is_file()
    assert final["result"]["playlistKey"] == str(playlist)
    parsed = m3u8.loads(playlist.read_text())
    assert parsed.segments
    for segment in parsed.segments:
        assert (out / "360p" / segment.uri).is_file()
    assert list(scratch.iterdir()) == []


def test_http_404_is_an_error(http_base: str, scratch: Path, tmp_path: Path) -> None:
    url = f"{http_base}/nope.mp4"
    out = tmp_path / "out"
    result = run_worker(
        "rendition", url, str(out), *RUNG_360, env=_env("http://127.0.0.1:9", scratch)
    )
    assert result.returncode == 1, result.stderr
    final = _final(result.stdout)
    assert final["event"] == "error"
    assert final["exitCode"] == 1
    assert url in final["message"]
    assert "404" in final["message"]
    assert not out.exists()
    assert list(scratch.iterdir()) == []


def test_http_download_cut_short_is_retryable(
    http_base: str, scratch: Path, tmp_path: Path
) -> None:
    url = f"{http_base}{TRUNCATED}"
    out = tmp_path / "out"
    result = run_worker("probe", url, str(out), env=_env("http://127.0.0.1:9", scratch))
    final = _final(result.stdout)
    assert final["event"] == "error"
    assert url in final["message"]
    assert result.returncode == 1, final


@pytest.mark.parametrize("segment_type", sorted(SEGMENT_CASES))
def test_audio_rendition_to_s3(
    s3: S3Client, env: dict[str, str], scratch: Path, tmp_path: Path, segment_type: str
) -> None:
    """Published as it is encoded (transcode_worker.growing), and whole when done."""
    prefix, extension, segment_content_type = SEGMENT_CASES[segment_type]
    prefix = f"{prefix}-audio"
    result = run_worker(
        "audio", SOURCE_URL, f"s3://{OUTPUT_BUCKET}/{prefix}", "--name", "audio-0",
        "--segment-seconds", "1", "--segment-type", segment_type,
        "--termination-log", str(tmp_path / "term.json"), env=env,
    )  # fmt: skip
    final = _assert_ok(result)
    playlist_key = f"{prefix}/audio-0/index.m3u8"
    assert final["result"]["playlistKey"] == playlist_key
    assert final["result"]["codecs"] == "mp4a.40.2"
    keys = _keys(s3, OUTPUT_BUCKET, f"{prefix}/")
    assert all(key.startswith(f"{prefix}/audio-0/") for key in keys), keys
    playlist_text = _text(s3, OUTPUT_BUCKET, playlist_key)
    assert target_duration_errors(playlist_text) == []
    playlist = m3u8.loads(playlist_text)
    assert playlist.is_endlist
    assert playlist.playlist_type == "vod"
    named = {f"{prefix}/audio-0/{segment.uri}" for segment in playlist.segments}
    named |= {f"{prefix}/audio-0/{segment_map.uri}" for segment_map in playlist.segment_map}
    assert keys == named | {playlist_key}  # every file it names, and nothing else
    assert s3.head_object(Bucket=OUTPUT_BUCKET, Key=playlist_key)["ContentType"] == PLAYLIST_TYPE
    for key in named:
        head = s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)
        expected = "video/mp4" if key.endswith(".mp4") else segment_content_type
        assert head["ContentType"] == expected, key
        assert key.endswith((extension, ".mp4"))
    assert list(scratch.iterdir()) == []
