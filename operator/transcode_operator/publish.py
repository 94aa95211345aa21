"""Telling the rest of the product: the `videos` read model in MongoDB and live events
through the API's Socket.IO `/internal` namespace. Neither may stop a transcode: failures
are logged, MongoDB writes are retried later, realtime events are held (but progress) while
offline."""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import socketio
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from videotranscode import (
    ENDING_EVENTS,
    EndedPayload,
    EventPayload,
    Phase,
    PhasePayload,
    PlayablePayload,
    ProgressPayload,
    SucceededPayload,
    TranscodedVideo,
    TranscodeEvent,
    VideoPhase,
    VideoTranscodeStatus,
    stored_fields,
    transcode_fields,
)

logger = logging.getLogger(__name__)

INTERNAL_NAMESPACE = "/internal"
BACKLOG = 256  # events other than progress kept while the API is unreachable
# The operator's phases of a transcode under way, as the `videos` record spells them. `queued`
# counts only once the operator has written (`transcodeSeq`): before that it is the API's,
# whose resource may not exist yet.
UNFINISHED = [VideoPhase.of(phase).value for phase in Phase if not phase.finished]
# What `unfinished` reads of each video: the fields of a TranscodedVideo.
TRANSCODED_VIDEO = {field.alias or name: 1 for name, field in TranscodedVideo.model_fields.items()}


def video_update(
    *, namespace: str, name: str, status: VideoTranscodeStatus, seq: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) that applies only over an older write: updates may arrive late or be
    retried out of order, and the `videos` document must never move backwards."""
    fields = transcode_fields(
        status, namespace=namespace, name=name, seq=seq, now=datetime.now(UTC)
    )
    newer_than = {"$or": [{"transcodeSeq": {"$lt": seq}}, {"transcodeSeq": {"$exists": False}}]}
    return newer_than, {"$set": stored_fields(fields)}


class VideoStore:
    """Writes the `videos` documents; keeps the latest failed write per video to retry."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
        self._videos = self._client[database]["videos"]
        self._pending: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._failing = False  # an outage is a warning once; what fails while it lasts, INFO

    def _write(self, video_id: str, query: dict[str, Any], update: dict[str, Any]) -> None:
        try:
            self._videos.update_one({"_id": video_id, **query}, update)
        except PyMongoError as exc:
            level = logging.INFO if self._failing else logging.WARNING
            logger.log(level, "MongoDB update of video %s failed, will retry: %s", video_id, exc)
            self._failing = True
            self._pending[video_id] = (query, update)
        else:
            if self._failing:
                logger.info("MongoDB updates work again")
                self._failing = False
            self._pending.pop(video_id, None)

    async def publish(self, video_id: str, query: dict[str, Any], update: dict[str, Any]) -> None:
        self._pending[video_id] = (query, update)
        await self.retry_pending()

    def unfinished(self, namespaces: list[str]) -> list[TranscodedVideo]:
        """Videos the operator has written as under way, in `namespaces` (empty: all)."""
        query: dict[str, Any] = {
            "phase": {"$in": UNFINISHED},
            "transcodeSeq": {"$exists": True},
        }
        if namespaces:
            query["transcode.namespace"] = {"$in": namespaces}
        found = self._videos.find(query, TRANSCODED_VIDEO).sort("_id")
        return [TranscodedVideo.model_validate(video) for video in found]

    async def retry_pending(self) -> None:
        for video_id, (query, update) in list(self._pending.items()):
            await asyncio.to_thread(self._write, video_id, query, update)

    def close(self) -> None:
        self._client.close()


class Realtime:
    """A Socket.IO client of the API's `/internal` namespace, authenticated by a token.

    While the API is unreachable (also before the first connection, as when a standby has
    just taken over), the last `BACKLOG` events other than progress are kept and sent once
    connected, so an owner still hears that a video ended; progress is dropped (the next
    report supersedes it)."""

    def __init__(self, url: str, token: str) -> None:
        self._url, self._token = url, token
        # handle_sigint=False: its own SIGINT handler cancels every task of the process,
        # Kopf's clean stop included.
        self._client = socketio.AsyncClient(reconnection=True, logger=False, handle_sigint=False)
        self._backlog: deque[tuple[str, dict[str, Any]]] = deque(maxlen=BACKLOG)
        self._sending = asyncio.Lock()
        self._client.on("connect", self._send_backlog, namespace=INTERNAL_NAMESPACE)

    async def connect_forever(self) -> None:
        """Keep trying to connect until it works (the client reconnects by itself after)."""
        delay = 1.0
        while not self._client.connected:
            try:
                await self._client.connect(
                    self._url,
                    namespaces=[INTERNAL_NAMESPACE],
                    auth={"token": self._token},
                    transports=["websocket"],
                    wait_timeout=5,
                )
            except (socketio.exceptions.ConnectionError, OSError) as exc:
                logger.info("API realtime not reachable yet (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def emit(self, event: TranscodeEvent, payload: EventPayload) -> None:
        if event is TranscodeEvent.PROGRESS and not self._online():
            return
        self._backlog.append((event.value, payload.wire()))
        await self._send_backlog()

    def _online(self) -> bool:
        # True from the namespace's `connect` event on (`connected` only once `connect()`
        # has returned, after that event).
        return INTERNAL_NAMESPACE in self._client.namespaces

    async def _send_backlog(self) -> None:
        async with self._sending:  # in order, one sender at a time
            while self._backlog and self._online():
                await self._send(*self._backlog.popleft())

    async def _send(self, event: str, data: dict[str, Any]) -> None:
        try:
            await self._client.emit(event, data, namespace=INTERNAL_NAMESPACE)
        except socketio.exceptions.SocketIOError as exc:
            logger.info("dropping %s: %s", event, exc)

    async def close(self) -> None:
        await self._client.disconnect()


def owner_of(spec: Mapping[str, Any]) -> dict[str, str]:
    """Whose video a resource transcodes, as the events name it."""
    return {key: value for key in ("videoId", "owner") if (value := spec.get(key))}


@dataclass
class Publisher:
    """Tells the read model and live clients about a resource; either may be absent."""

    videos: VideoStore | None = None
    realtime: Realtime | None = None

    async def status_changed(
        self, body: Mapping[str, Any], old: VideoTranscodeStatus, new: VideoTranscodeStatus
    ) -> None:
        """The `videos` record follows the status; a new phase is an event."""
        spec = body.get("spec") or {}
        video_id = spec.get("videoId")
        if not video_id:
            return
        meta = body["metadata"]
        if self.videos is not None:
            query, update = video_update(
                namespace=meta["namespace"], name=meta["name"], status=new, seq=time.time_ns()
            )
            await self.videos.publish(video_id, query, update)
        if self.realtime is None:
            return
        state = PhasePayload(
            video_id=video_id, owner=spec.get("owner"), phase=new.phase, progress=new.progress,
            renditions=new.renditions,
        )  # fmt: skip
        if new.playable_at and not old.playable_at:
            await self.realtime.emit(TranscodeEvent.PLAYABLE, PlayablePayload(
                **dict(state), playback=new.playback, playable_at=new.playable_at,
            ))  # fmt: skip
        if new.phase == old.phase:
            return
        await self.realtime.emit(TranscodeEvent.PHASE, state)
        if new.phase == Phase.SUCCEEDED:
            succeeded = SucceededPayload(**dict(state), playback=new.playback)
            await self.realtime.emit(TranscodeEvent.SUCCEEDED, succeeded)
        elif (ending := ENDING_EVENTS.get(new.phase)) is not None:
            await self.realtime.emit(ending, EndedPayload(**dict(state), message=new.message))

    async def progress(
        self, owner: Mapping[str, str], rendition: str, percent: float, line: Mapping[str, Any]
    ) -> None:
        """A rung's progress (`line` is the worker's progress line), relayed as it comes."""
        if self.realtime is not None and (video_id := owner.get("videoId")):
            await self.realtime.emit(TranscodeEvent.PROGRESS, ProgressPayload(
                video_id=video_id, owner=owner.get("owner"), rendition=rendition, percent=percent,
                out_time_seconds=line.get("outTimeSeconds"), speed=line.get("speed"),
            ))  # fmt: skip

    async def close(self) -> None:
        if self.videos is not None:
            self.videos.close()
        if self.realtime is not None:
            await self.realtime.close()
