"""The read model in MongoDB (SecantusDB on loopback) and the Socket.IO relay client
(a real python-socketio server under uvicorn)."""

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import socketio
import uvicorn
from hlsforge_dev.loopback import free_port, secantus_command, wait_for_port
from pymongo import MongoClient

from transcode_operator.publish import Publisher, Realtime, VideoStore, video_update
from videotranscode import (
    Phase,
    PhasePayload,
    Playback,
    PostUploadState,
    ProgressPayload,
    RenditionPhase,
    StoredObject,
    TranscodeEvent,
    TranscodeRef,
    VideoPhase,
    VideoRecord,
    VideoTranscodeStatus,
)

TOKEN = "service-token-for-tests"


def update(phase: str, progress: float, seq: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return video_update(
        namespace="media", name="v-1", seq=seq,
        status=VideoTranscodeStatus.model_validate({"phase": phase, "progress": progress}),
    )  # fmt: skip


@pytest.fixture
def videos(mongodb_uri: str) -> Iterator[Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    collection = client["hlsforge_test"]["videos"]
    collection.delete_many({})
    yield collection
    client.close()


async def test_updates_never_move_a_video_backwards(mongodb_uri: str, videos: Any) -> None:
    videos.insert_one({"_id": "vid-1", "title": "cat", "phase": "queued"})
    store = VideoStore(mongodb_uri, "hlsforge_test")
    await store.publish("vid-1", *update("Transcoding", 40, seq=2))
    await store.publish("vid-1", *update("Probing", 0, seq=1))  # arrives late
    doc = videos.find_one({"_id": "vid-1"})
    assert (doc["phase"], doc["progress"], doc["title"]) == ("transcoding", 40, "cat")
    assert doc["transcode"] == {"namespace": "media", "name": "v-1"}
    await store.publish("vid-1", *update("Failed", 40, seq=3))
    assert videos.find_one({"_id": "vid-1"})["phase"] == "failed"
    store.close()


async def test_the_update_writes_fields_of_the_videos_record(mongodb_uri: str, videos: Any) -> None:
    created = datetime(2026, 3, 1, tzinfo=UTC)
    record = VideoRecord(
        id="vid-r", owner="u1", title="cat", filename="cat.mp4", content_type="video/mp4",
        size=99, source=StoredObject(bucket="uploads", key="uploads/u1/cat.mp4"),
        upload=PostUploadState(), phase=VideoPhase.QUEUED, created_at=created,
        updated_at=created,
    )  # fmt: skip
    videos.insert_one(record.document())
    store = VideoStore(mongodb_uri, "hlsforge_test")
    status = VideoTranscodeStatus.model_validate(
        {"phase": "Transcoding", "progress": 30,
         "renditions": [{"name": "360p", "phase": "Running", "progress": 30}]}
    )  # fmt: skip
    await store.publish("vid-r", *video_update(namespace="media", name="v-r", status=status,
                                               seq=5))  # fmt: skip
    written = VideoRecord.model_validate(videos.find_one({"_id": "vid-r"}))
    assert (written.phase, written.progress, written.transcode_seq) == (
        VideoPhase.TRANSCODING, 30, 5
    )  # fmt: skip
    assert [(r.name, r.phase) for r in written.renditions] == [("360p", RenditionPhase.RUNNING)]
    kept = {"id", "owner", "title", "filename", "content_type", "size", "source", "upload"}
    assert written.model_dump(include=kept) == record.model_dump(include=kept)  # the API's
    [unfinished] = store.unfinished(["media"])
    assert (unfinished.id, unfinished.owner, unfinished.transcode) == (
        "vid-r", "u1", TranscodeRef(namespace="media", name="v-r")
    )  # fmt: skip
    store.close()


async def test_updates_never_create_missing_videos(mongodb_uri: str, videos: Any) -> None:
    store = VideoStore(mongodb_uri, "hlsforge_test")
    await store.publish("nobody", *update("Succeeded", 100, seq=1))
    assert videos.count_documents({}) == 0
    store.close()


async def test_an_unreachable_mongodb_is_retried_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    store = VideoStore(f"mongodb://127.0.0.1:{port}/", "hlsforge_test")
    caplog.set_level(logging.INFO, logger="transcode_operator")
    await store.publish("vid-2", *update("Transcoding", 10, seq=1))  # logs, does not raise
    await store.publish("vid-2", *update("Transcoding", 55, seq=2))
    # The outage is a warning once; writes retried while it lasts are expected (INFO).
    levels = [r.levelno for r in caplog.records if r.name.startswith("transcode_operator")]
    assert levels == [logging.WARNING, logging.INFO]
    server = subprocess.Popen(
        secantus_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        client: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{port}/")
        client["hlsforge_test"]["videos"].insert_one({"_id": "vid-2", "phase": "queued"})
        await store.retry_pending()
        doc = client["hlsforge_test"]["videos"].find_one({"_id": "vid-2"})
        assert doc is not None
        assert (doc["phase"], doc["progress"]) == ("transcoding", 55)
        client.close()
    finally:
        store.close()
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
async def relay() -> AsyncIterator[tuple[str, list[tuple[str, Any]]]]:
    """A Socket.IO server whose /internal namespace accepts only TOKEN; records events."""
    received: list[tuple[str, Any]] = []
    sio = socketio.AsyncServer(async_mode="asgi")

    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> bool:
        return (auth or {}).get("token") == TOKEN

    async def any_event(event: str, sid: str, data: Any) -> None:
        received.append((event, data))

    sio.on("connect", connect, namespace="/internal")
    sio.on("*", any_event, namespace="/internal")
    port = free_port()
    config = uvicorn.Config(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="error",
                            timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", received
    server.should_exit = True
    await task


async def test_realtime_relays_events_with_the_service_token(
    relay: tuple[str, list[tuple[str, Any]]],
) -> None:
    """Before the first connection (a standby just taken over): progress is dropped, other
    events are kept and sent once connected, before what comes next."""
    url, received = relay
    realtime = Realtime(url, TOKEN)
    progress = ProgressPayload(video_id="v", rendition="360p", percent=12.5)
    phase = PhasePayload(video_id="v", phase=Phase.CANCELLED, progress=40, renditions=[])
    await realtime.emit(TranscodeEvent.PROGRESS, progress)  # offline: dropped, no error
    await realtime.emit(TranscodeEvent.PHASE, phase)  # offline: kept
    await asyncio.wait_for(realtime.connect_forever(), timeout=10)
    await realtime.emit(TranscodeEvent.PROGRESS, progress)
    for _ in range(100):
        if len(received) == 2:
            break
        await asyncio.sleep(0.02)
    assert received == [("transcode.phase", phase.wire()),
                        ("transcode.progress", progress.wire())]  # fmt: skip
    assert received[1][1]["percent"] == 12.5
    await realtime.close()


async def test_realtime_with_a_wrong_token_is_refused(
    relay: tuple[str, list[tuple[str, Any]]],
) -> None:
    url, _ = relay
    realtime = Realtime(url, "not-the-token")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(realtime.connect_forever(), timeout=1.5)
    await realtime.close()


async def test_a_status_first_playable_sends_transcode_playable_once(
    relay: tuple[str, list[tuple[str, Any]]],
) -> None:
    """Sent when playableAt first appears (here while Transcoding), never again after."""
    url, received = relay
    realtime = Realtime(url, TOKEN)
    await asyncio.wait_for(realtime.connect_forever(), timeout=10)
    publisher = Publisher(realtime=realtime)
    body = {"metadata": {"namespace": "ns", "name": "v1"},
            "spec": {"videoId": "vid-1", "owner": "u1"}}  # fmt: skip
    transcoding = VideoTranscodeStatus(phase=Phase.TRANSCODING, progress=20)
    playback = Playback(master_playlist="v/1/master.m3u8")
    playable = transcoding.model_copy(
        update={"playable_at": "2026-12-02T10:00:00Z", "playback": playback, "progress": 40}
    )
    await publisher.status_changed(body, transcoding, playable)
    await publisher.status_changed(body, playable, playable.model_copy(update={"progress": 60}))
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # a second one would have arrived by now
    assert [event for event, _ in received] == ["transcode.playable"]
    payload = received[0][1]
    assert (payload["videoId"], payload["owner"], payload["phase"]) == (
        "vid-1",
        "u1",
        "Transcoding",
    )
    assert payload["playableAt"] == "2026-12-02T10:00:00Z"
    assert payload["playback"] == {"masterPlaylist": "v/1/master.m3u8"}
    await realtime.close()
