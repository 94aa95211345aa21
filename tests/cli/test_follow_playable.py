"""`hlsforge` tells the playback URL as soon as the start plays while the rest encodes, once,
and still prints the final one when it succeeds. Against the API (real uvicorn, SecantusDB,
moto): the record is written with the operator's writer and the events sent through the API's
`/internal` relay, as the operator would."""

import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, ClipFactory
from helpers import (
    Api,
    Signup,
    create_and_upload,
    publish_like_the_operator,
    send_like_the_operator,
)

from hlsforge_cli import main
from hlsforge_cli.client import ApiClient
from hlsforge_cli.follow import follow
from hlsforge_cli.models import Rendition
from hlsforge_cli.output import Output
from videotranscode import PlayablePayload, SucceededPayload, TranscodeEvent

PLAYABLE_AT = "2026-12-02T01:02:03Z"
MASTER = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000\n180p/index.m3u8\n"


class Listener:
    """Records what `follow` tells; `started` once it has subscribed and read the video."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.started = threading.Event()

    def phase(self, phase: str, progress: float, renditions: list[Rendition]) -> None:
        self.phases.append(phase)
        self.started.set()

    def rendition(self, name: str, percent: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def status(video_id: str, phase: str) -> dict[str, Any]:
    return {
        "phase": phase, "progress": 100 if phase == "Succeeded" else 30,
        "renditions": [{"name": "180p", "phase": "Running", "progress": 30}],
        "playback": {"masterPlaylist": f"videos/{video_id}/master.m3u8"},
        "playableAt": PLAYABLE_AT,
    }  # fmt: skip


@dataclass(frozen=True)
class Queued:
    email: str
    token: str
    owner: str
    video_id: str


@pytest.fixture
def queued(api: Api, signup: Signup, clip: ClipFactory, s3: Any) -> Queued:
    """A user's queued video whose master playlist is already in S3."""
    email = f"early-{uuid.uuid4().hex[:8]}@example.com"
    token = signup(email)
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as http:
        owner = http.get("/api/v1/auth/me").json()["id"]
        video_id = create_and_upload(http, clip("early.mp4", size="320x180", seconds=1))
        assert http.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
    s3.put_object(Bucket="media", Key=f"videos/{video_id}/master.m3u8", Body=MASTER.encode())
    return Queued(email, token, owner, video_id)


def test_follow_tells_the_playback_url_once_it_plays_then_the_final_one(
    api: Api, queued: Queued, capsys: pytest.CaptureFixture[str]
) -> None:
    owner, video_id = queued.owner, queued.video_id
    listener = Listener()
    announced = threading.Event()
    out = Output(rich_out=False, rich_err=False)

    def operator() -> None:
        """Playable while transcoding (sent twice: told once), then succeeded."""
        assert listener.started.wait(timeout=30)
        early = status(video_id, "Transcoding")
        publish_like_the_operator(api, video_id, early, seq=1)
        playable = PlayablePayload.model_validate({**early, "videoId": video_id, "owner": owner})
        for _ in range(2):
            send_like_the_operator(api, TranscodeEvent.PLAYABLE, playable.wire())
        assert announced.wait(timeout=30)
        done = status(video_id, "Succeeded")
        publish_like_the_operator(api, video_id, done, seq=2)
        succeeded = SucceededPayload.model_validate({**done, "videoId": video_id, "owner": owner})
        send_like_the_operator(api, TranscodeEvent.SUCCEEDED, succeeded.wire())

    told_after: list[list[str]] = []  # what the listener had been told by then

    def tell() -> None:
        told_after.append(list(listener.phases))
        main.playable_announcer(client, video_id, out)()
        announced.set()

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    with ApiClient(api.url, queued.token) as client:
        video = follow(client, video_id, listener, on_playable=tell)
        thread.join(timeout=30)
        assert main._finished(client, video, out) == main.OK
    assert video.phase == "succeeded"
    # Told on the event itself (its state told first), not on a later read of the video.
    assert told_after == [["queued", "transcoding"]]
    captured = capsys.readouterr()
    [told] = [line for line in captured.err.splitlines() if line.startswith("playable now")]
    early_url = told.removeprefix(main.PLAYABLE_NOW)
    assert early_url.endswith("/master.m3u8")
    assert httpx.get(early_url).text == MASTER  # it played while it was transcoding
    [final_url] = captured.out.splitlines()
    assert final_url.endswith("/master.m3u8")


def test_status_shows_the_playback_url_of_a_video_that_plays_while_it_encodes(
    api: Api, queued: Queued, tmp_path: Path
) -> None:
    publish_like_the_operator(api, queued.video_id, status(queued.video_id, "Transcoding"),
                              seq=1)  # fmt: skip
    env = {**os.environ, "HLSFORGE_CONFIG_DIR": str(tmp_path / "config")}

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hlsforge_cli", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    login = cli("login", "--api-url", api.url, "--email", queued.email, "--password-stdin",
                stdin=PASSWORD + "\n")  # fmt: skip
    assert login.returncode == 0, login.stderr
    shown = cli("status", queued.video_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "phase: transcoding" in lines
    assert (
        f"playable: since {datetime.fromisoformat(PLAYABLE_AT).isoformat()}, while it encodes"
        in lines
    )
    assert lines[-1].startswith("playback: http")
    assert httpx.get(lines[-1].removeprefix("playback: ")).text == MASTER
