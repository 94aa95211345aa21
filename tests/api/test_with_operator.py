"""The API and the real operator together: an upload becomes a VideoTranscode, the operator
runs real worker processes, live progress reaches the owner's socket through /internal, and
the finished video plays through the API's signed playlists."""

from collections.abc import Iterator
from typing import Any

import httpx
import m3u8
import pytest
import socketio
from conftest import ClipFactory
from helpers import Api, Signup, create_and_upload
from hlsforge_dev import JobRunner
from operated import operator_of

pytestmark = pytest.mark.usefixtures("operator_env")
LIFECYCLE = ["Pending", "Probing", "Queued", "Transcoding", "Packaging", "Succeeded"]


@pytest.fixture
def operator(
    api: Api, monkeypatch: pytest.MonkeyPatch, runner: JobRunner, operator_env: dict[str, str]
) -> Iterator[None]:
    """The operator in Kopf's thread, wired to the API's MongoDB and Socket.IO. (It asks for
    `operator_env` itself: the module's usefixtures mark would set it up after Kopf starts.)"""
    with operator_of(api, monkeypatch):
        yield


def events_until_finished(sock: socketio.SimpleClient) -> list[tuple[str, dict[str, Any]]]:
    events = []
    while True:
        event, payload = sock.receive(timeout=120)
        events.append((event, payload))
        if event in ("transcode.succeeded", "transcode.failed"):
            return events


@pytest.mark.usefixtures("operator")
def test_upload_to_playback_with_the_operator(api: Api, signup: Signup, clip: ClipFactory) -> None:
    token = signup()
    sock = socketio.SimpleClient()
    sock.connect(api.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        with api.client(token) as client:
            video_id = create_and_upload(client, clip("trip.mp4", size="960x540", seconds=2))
            assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
            events = events_until_finished(sock)
            video = client.get(f"/api/v1/videos/{video_id}").json()
            playback = client.get(f"/api/v1/videos/{video_id}/playback").json()
    finally:
        sock.disconnect()

    names = [name for name, _ in events]
    assert names[-1] == "transcode.succeeded", events[-1]
    assert all(payload["videoId"] == video_id for _, payload in events)
    phases = [p["phase"] for name, p in events if name == "transcode.phase"]
    assert phases[-1] == "Succeeded"
    # Passes may skip a short phase, but never go back
    order = [LIFECYCLE.index(phase) for phase in phases]
    assert order == sorted(order), phases
    progress = [p for name, p in events if name == "transcode.progress"]
    assert progress, names
    assert {p["rendition"] for p in progress} <= {"audio-0", "360p", "540p"}

    assert video["phase"] == "succeeded"
    assert video["progress"] == 100
    assert sorted(r["name"] for r in video["renditions"]) == ["360p", "540p", "audio-0"]
    master = m3u8.loads(httpx.get(playback["masterUrl"]).text, uri=playback["masterUrl"])
    assert sorted(p.stream_info.resolution for p in master.playlists) == [(640, 360), (960, 540)]
    media = m3u8.loads(httpx.get(master.playlists[0].absolute_uri).text)
    assert httpx.get(media.segments[0].uri).status_code == 200
