"""`hlsforge` end to end: a real process against the running stack (emulated cluster with real
worker processes, moto, SecantusDB, operator, API), and multipart uploads against an API with
a 5 MiB threshold."""

import json
import os
import re
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest
from conftest import ClipFactory
from helpers import Api, create_and_upload
from hlsforge_dev.loopback import free_port

from hlsforge_cli import main, upload
from hlsforge_cli.client import ApiClient, ApiError
from hlsforge_cli.follow import follow
from hlsforge_cli.models import Rendition
from hlsforge_cli.output import Output

MiB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(32)
PASSWORD = "a long enough password"

Cli = Callable[..., subprocess.CompletedProcess[str]]


def register(api_url: str) -> str:
    """A new account; returns its email."""
    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    response = httpx.post(f"{api_url}/api/v1/auth/register",
                          json={"email": email, "password": PASSWORD}, timeout=10)  # fmt: skip
    assert response.status_code == 201, response.text
    return email


def cli_for(api_url: str, config_dir: Path) -> Cli:
    """`cli("upload", path, input=...)`: `python -m hlsforge_cli ARGS` with its own config
    directory; stdout and stderr captured as text, never a terminal."""
    env = {**os.environ, "HLSFORGE_CONFIG_DIR": str(config_dir), "HLSFORGE_API_URL": api_url}

    def run(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hlsforge_cli", *map(str, args)], env=env, input=input,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    return run


def signed_in(api_url: str, config_dir: Path) -> Cli:
    cli = cli_for(api_url, config_dir)
    email = register(api_url)
    login = cli("login", "--email", email, "--password-stdin", input=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    return cli


@pytest.fixture
def stack_cli(dev_stack: str, tmp_path: Path) -> Cli:
    """The CLI signed in as a new user of the whole stack."""
    return signed_in(dev_stack, tmp_path / "config")


def test_usage_and_sign_in_errors(tmp_path: Path) -> None:
    cli = cli_for(f"http://127.0.0.1:{free_port()}", tmp_path / "config")  # nothing listens
    assert "exit codes:" in cli("--help").stdout
    bad_id = cli("status", "not-an-id")
    assert bad_id.returncode == 2
    assert "argument ID: not a video id (24 hex characters): 'not-an-id'" in bad_id.stderr
    missing = cli("upload", tmp_path / "missing.mp4")
    assert (missing.returncode, missing.stderr) == (
        2,
        f"error: no such file: {tmp_path}/missing.mp4\n",
    )
    directory = cli("upload", tmp_path)
    assert (directory.returncode, directory.stderr) == (
        2,
        f"error: {tmp_path} is a directory, not a file\n",
    )
    bad_email = cli("login", "--email", "not-an-email", "--password-stdin", input="pw\n")
    assert (bad_email.returncode, bad_email.stderr) == (
        2,
        "error: not an email address: 'not-an-email'\n",
    )
    no_email = cli("login", input="")  # end of input at the prompt
    assert no_email.returncode == 2
    assert no_email.stdout == ""  # the prompt goes to stderr
    assert no_email.stderr == "Email: \nerror: no email given (end of input)\n"
    not_signed_in = cli("list")
    assert not_signed_in.returncode == 1
    assert "not signed in: run `hlsforge login`" in not_signed_in.stderr
    unreachable = cli("login", "--email", "a@example.com", "--password-stdin", input="pw\n")
    assert unreachable.returncode == 1
    assert "cannot reach the API" in unreachable.stderr


@pytest.mark.parametrize(("name", "expected"), [
    ("a.mp4", "video/mp4"), ("a.M4V", "video/mp4"), ("a.mov", "video/quicktime"),
    ("a.webm", "video/webm"), ("a.mkv", "video/x-matroska"), ("a.avi", "video/x-msvideo"),
    ("a.mpg", "video/mpeg"), ("a.mpeg", "video/mpeg"), ("a.ts", "video/mp2t"),
    ("a.m2ts", "video/mp2t"), ("a.3gp", "video/3gpp"), ("a.flv", "video/x-flv"),
    ("a.ogv", "video/ogg"), ("a.ogg", "video/ogg"), ("a.wmv", "video/x-ms-wmv"),
    ("a.asf", "video/x-ms-asf"), ("a.qt", "video/quicktime"), ("no-extension", "video/mp4"),
])  # fmt: skip
def test_media_types_come_from_the_extension_first(name: str, expected: str) -> None:
    """The system's table says `.ts` is Qt Linguist and `.3gp` audio: the API refuses those."""
    assert main.content_type_of(Path(name)) == expected


def test_login_keeps_the_token_and_never_the_password(dev_stack: str, tmp_path: Path) -> None:
    cli = cli_for(dev_stack, tmp_path / "config")
    email = register(dev_stack)
    wrong = cli("login", "--email", email, "--password-stdin", input="not the password\n")
    assert (wrong.returncode, wrong.stderr) == (1, "error: incorrect email or password\n")

    login = cli("login", "--email", email, "--password-stdin", input=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    path = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["api_url"] == dev_stack
    assert saved["email"] == email
    assert PASSWORD not in path.read_text()
    assert saved["token"] not in login.stdout + login.stderr
    me = httpx.get(f"{dev_stack}/api/v1/auth/me",
                   headers={"Authorization": f"Bearer {saved['token']}"})  # fmt: skip
    assert me.json()["email"] == email
    assert cli("list").returncode == 0


def test_upload_follows_to_a_playable_url_then_list_status_delete(
    stack_cli: Cli, clip: ClipFactory
) -> None:
    upload = stack_cli("upload", clip("trip.mp4", size="640x360", seconds=2), "--title", "Trip")
    assert upload.returncode == 0, upload.stderr
    video_id, master_url = upload.stdout.splitlines()
    assert "live progress unavailable" not in upload.stderr  # followed over Socket.IO
    assert "phase: succeeded" in upload.stderr
    assert "  360p: 100%" in upload.stderr

    master = m3u8.loads(httpx.get(master_url).text, uri=master_url)
    assert [p.stream_info.resolution for p in master.playlists] == [(640, 360)]
    media = m3u8.loads(httpx.get(master.playlists[0].absolute_uri).text)
    assert media.segments
    assert httpx.get(media.segments[0].uri).status_code == 200

    listed = stack_cli("list")
    assert listed.stdout.splitlines() == [f"{video_id}\tsucceeded\t100%\tTrip"]
    assert stack_cli("list", "--phase", "failed").stdout == ""
    [item] = json.loads(stack_cli("list", "--json").stdout)
    assert (item["id"], item["phase"]) == (video_id, "succeeded")

    status = stack_cli("status", video_id)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert "phase: succeeded" in lines
    assert any(line.startswith("rendition 360p: succeeded 100% 640x360") for line in lines)
    assert lines[-1].startswith("playback: http")
    assert lines[-1].endswith("/master.m3u8")
    detail = json.loads(stack_cli("status", video_id, "--json").stdout)
    assert [r["name"] for r in detail["video"]["renditions"]] == ["audio-0", "360p"]
    assert detail["playback"]["masterUrl"].endswith("/master.m3u8")

    deleted = stack_cli("delete", video_id)
    assert deleted.returncode == 0, deleted.stderr
    gone = stack_cli("status", video_id)
    assert (gone.returncode, gone.stderr) == (1, "error: video not found\n")
    assert stack_cli("list").stdout == ""


def test_a_file_that_is_not_a_video_is_rejected(stack_cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(range(256)) * 400)
    upload = stack_cli("upload", bad)
    assert upload.returncode == 3, upload.stderr
    assert "error: the file was rejected: The uploaded file is not a video" in upload.stderr
    [video_id] = upload.stdout.splitlines()
    assert stack_cli("list", "--phase", "failed").stdout.startswith(f"{video_id}\tfailed")
    again = stack_cli("upload", bad, "--resume", video_id)  # the API answers 409: refused
    assert again.returncode == 3, again.stderr
    assert "error: the upload ended (The uploaded file is not a video" in again.stderr


def test_a_corrupt_video_fails_its_transcode(
    stack_cli: Cli, clip: ClipFactory, tmp_path: Path
) -> None:
    head = clip("real.mp4", seconds=1).read_bytes()[:4096]  # the container sniff passes
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(head + bytes(range(256)) * 800)
    upload = stack_cli("upload", corrupt)
    assert upload.returncode == 4, upload.stderr
    assert len(upload.stdout.splitlines()) == 1  # the video id, no playback URL
    [failure] = [line for line in upload.stderr.splitlines() if line.startswith("error:")]
    assert failure.startswith("error: the transcode failed: probe failed:"), upload.stderr


class Recorder:
    def __init__(self) -> None:
        self.phases: list[str] = []
        self.notes: list[str] = []

    def phase(self, phase: str, progress: float, renditions: list[Rendition]) -> None:
        self.phases.append(phase)

    def rendition(self, name: str, percent: float) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_following_polls_when_live_progress_is_unavailable(
    dev_stack: str, clip: ClipFactory
) -> None:
    with ApiClient(dev_stack) as anonymous:
        token = anonymous.login(register(dev_stack), PASSWORD).access_token
    with ApiClient(dev_stack, token) as client:
        with httpx.Client(base_url=dev_stack, headers={"Authorization": f"Bearer {token}"}) as http:
            video_id = create_and_upload(http, clip("short.mp4", seconds=1))
        client.complete(video_id)
        recorder = Recorder()
        nowhere = f"http://127.0.0.1:{free_port()}"
        video = follow(client, video_id, recorder, events_url=nowhere, poll_seconds=0.5,
                       connect_timeout=2)  # fmt: skip
    assert video.phase == "succeeded"
    [note] = recorder.notes
    assert note.startswith("live progress unavailable (")
    assert note.endswith("); polling every 0.5 s instead")
    assert recorder.phases[-1] == "succeeded"


class FailingParts(httpx.HTTPTransport):
    """The network, except that every PUT of part 2 or later fails (once part 1 is stored,
    so that there is something to resume)."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[int] = []
        self.first_stored = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("partNumber", 0))
        if request.method == "PUT":
            self.puts.append(number)
            if number >= 2:
                self.first_stored.wait(timeout=30)
                raise httpx.ConnectError("the network is down", request=request)
        response = super().handle_request(request)
        if number == 1:
            response.read()
            self.first_stored.set()
        return response


def test_multipart_upload_resumes_after_an_interruption(
    api: Api, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = tmp_path / "config"
    cli = signed_in(api.url, config)
    big = tmp_path / "big.mp4"
    big.write_bytes(MP4_HEAD + bytes(11 * MiB))  # three parts of 5 MiB at most

    # In this process, with a network that loses parts 2 and 3: the first to fail three
    # times stops the upload.
    transport = FailingParts()
    monkeypatch.setenv("HLSFORGE_CONFIG_DIR", str(config))
    monkeypatch.setattr(main, "storage_client", lambda: httpx.Client(transport=transport))
    monkeypatch.setattr(main, "multipart_upload", partial(upload.multipart_upload, backoff=0.05))
    code = main.run(["upload", str(big), "--no-follow"], Output(rich_out=False, rich_err=False))
    out, err = capsys.readouterr()
    assert code == 1, err
    [video_id] = out.splitlines()
    assert "uploading big.mp4: 11.5 MB in 3 parts\n" in err
    assert f"resume with: hlsforge upload {big} --resume {video_id}" in err
    assert re.search(r"error: part [23] failed: ConnectError: the network is down\n", err)
    assert transport.puts.count(1) == 1
    assert max(transport.puts.count(2), transport.puts.count(3)) == 3  # tried three times

    # Resumed in this process: only what S3 lacks goes up and the parts are assembled, but the
    # API cannot be reached to complete the video.
    def unreachable(self: ApiClient, video_id: str) -> None:
        raise ApiError(f"cannot reach the API at {self.base_url}: ConnectError")

    monkeypatch.setattr(main, "storage_client", upload.storage_client)
    monkeypatch.setattr(ApiClient, "complete", unreachable)
    code = main.run(["upload", str(big), "--resume", video_id, "--no-follow"],
                    Output(rich_out=False, rich_err=False))  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "uploading big.mp4: 11.5 MB in 3 parts, 1 already uploaded" in err
    assert f"resume with: hlsforge upload {big} --resume {video_id}" in err
    assert (config / "uploads" / f"{video_id}.json").exists()

    # Then the real CLI finds the file assembled: it only completes it (nothing is sent again).
    resumed = cli("upload", big, "--resume", video_id, "--no-follow")
    assert resumed.returncode == 0, resumed.stderr
    assert f"the parts of video {video_id} are already assembled in storage" in resumed.stderr
    assert "uploading" not in resumed.stderr
    assert resumed.stdout.splitlines() == [video_id]
    assert json.loads(cli("status", video_id, "--json").stdout)["video"]["phase"] == "queued"
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket="uploads")["Contents"]
             if f"/{video_id}/" in o["Key"]]  # fmt: skip
    assert s3.head_object(Bucket="uploads", Key=key)["ContentLength"] == big.stat().st_size
    assert not (config / "uploads" / f"{video_id}.json").exists()


def test_a_rejected_multipart_upload_is_forgotten(api: Api, tmp_path: Path) -> None:
    config = tmp_path / "config"
    cli = signed_in(api.url, config)
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(b"these are my notes, not a video\n" * (200 * 1024))  # 6.6 MB: 2 parts
    rejected = cli("upload", notes, "--no-follow")
    assert rejected.returncode == 3, rejected.stderr
    assert "error: the file was rejected: The uploaded file is not a video" in rejected.stderr
    [video_id] = rejected.stdout.splitlines()
    assert "in 2 parts" in rejected.stderr
    assert not (config / "uploads" / f"{video_id}.json").exists()
