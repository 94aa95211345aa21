"""Following a transcode until it ends.

Live: a Socket.IO connection to the API with the access token, `subscribe {videoId}`, then
`transcode.progress` (one rendition's percent) and `transcode.phase` / `.playable` /
`.succeeded` / `.failed` / `.cancelled` (the whole state). When the start can be played while
the rest encodes (`transcode.playable`, or a video read with `playableAt`), `on_playable` is
called, once. The video is read once after subscribing, so
nothing sent before is missed (the operator writes the video before it sends the event). When
the connection cannot be made or drops, it says so and polls `GET /videos/{id}` every 2 s
instead.
"""

import contextlib
import queue
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from hlsforge_cli.client import ApiClient, ApiError
from hlsforge_cli.models import FINISHED, Rendition, Video
from videotranscode import PhasePayload, ProgressPayload, TranscodeEvent, parse_payload

__all__ = ["TranscodeListener", "follow"]

POLL_SECONDS = 2.0
QUIET_SECONDS = 15.0  # no event for this long: read the video anyway (events can be dropped)
Event = tuple[str, dict[str, Any]]


class TranscodeListener(Protocol):
    def phase(self, phase: str, progress: float, renditions: list[Rendition]) -> None:
        """The whole state: a phase (lowercase, as in the REST API) and every rendition."""

    def rendition(self, name: str, percent: float) -> None:
        """One rendition's progress."""

    def note(self, message: str) -> None:
        """Something the user should know (live progress is unavailable, …)."""


class LiveError(Exception):
    """No live connection."""


class LiveEvents:
    """The events of one video, from a Socket.IO client, as a queue."""

    def __init__(self, url: str, token: str, video_id: str) -> None:
        self._url, self._token, self._video_id = url, token, video_id
        self._events: queue.Queue[Event] = queue.Queue()
        import socketio  # noqa: PLC0415 (a slow import: only when following)

        self._errors = (socketio.exceptions.SocketIOError, OSError, ValueError)
        self._sio = socketio.Client(reconnection=False, logger=False, engineio_logger=False)
        for name in TranscodeEvent:
            self._sio.on(name.value, partial(self._received, name.value))
        self._sio.on("disconnect", self._disconnected)

    def _received(self, name: str, data: object = None) -> None:
        if isinstance(data, dict) and data.get("videoId") == self._video_id:
            self._events.put((name, data))

    def _disconnected(self, *_: object) -> None:
        self._events.put(("disconnect", {}))

    def open(self, timeout: float) -> None:
        try:
            # WebSocket only: long-polling needs sticky sessions across API replicas.
            self._sio.connect(self._url, auth={"token": self._token}, transports=["websocket"],
                              wait_timeout=timeout)  # fmt: skip
            ack = self._sio.call("subscribe", {"videoId": self._video_id}, timeout=timeout)
        except self._errors as exc:
            self.close()
            raise LiveError(str(exc) or type(exc).__name__) from exc
        if not (isinstance(ack, dict) and ack.get("ok")):
            self.close()
            reason = ack.get("error") if isinstance(ack, dict) else ack
            raise LiveError(f"subscribe refused: {reason}")

    def next(self, timeout: float) -> Event | None:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._sio.disconnect()


def _report(listener: TranscodeListener, video: Video) -> None:
    listener.phase(video.phase, video.progress, video.renditions)


def _report_event(listener: TranscodeListener, name: str, data: dict[str, Any]) -> str:
    """Tell the listener; returns the phase the event announces ('' for progress, and for
    an event this CLI cannot read)."""
    try:
        payload = parse_payload(TranscodeEvent(name), data)
    except ValueError:
        return ""
    if isinstance(payload, ProgressPayload):
        listener.rendition(payload.rendition, payload.percent)
        return ""
    assert isinstance(payload, PhasePayload)
    phase = payload.phase.lower()
    renditions = [Rendition.model_validate(rendition)
                  for rendition in payload.wire()["renditions"]]  # fmt: skip
    listener.phase(phase, payload.progress, renditions)
    return phase


def _live(
    client: ApiClient, video_id: str, listener: TranscodeListener, *, url: str | None,
    poll_seconds: float, timeout: float,
) -> LiveEvents | None:  # fmt: skip
    if not client.token:
        return None
    stream = LiveEvents(url or client.base_url, client.token, video_id)
    try:
        stream.open(timeout)
    except LiveError as exc:
        listener.note(f"live progress unavailable ({exc}); polling every {poll_seconds:g} s "
                      "instead")  # fmt: skip
        return None
    return stream


def _read(client: ApiClient, video_id: str, listener: TranscodeListener) -> Video | None:
    """The video, told to the listener; None after a passing failure (5xx, no answer)."""
    try:
        video = client.video(video_id)
    except ApiError as exc:
        if exc.status is not None and exc.status < 500:
            raise
        listener.note(f"could not read the video ({exc.detail}); trying again")
        return None
    listener.phase(video.phase, video.progress, video.renditions)
    return video


def follow(
    client: ApiClient, video_id: str, listener: TranscodeListener, *, live: bool = True,
    events_url: str | None = None, poll_seconds: float = POLL_SECONDS,
    connect_timeout: float = 10, after: datetime | None = None,
    on_playable: Callable[[], None] | None = None,
) -> Video:  # fmt: skip
    """Until the video is `succeeded`, `failed` or `cancelled`; returns it then.
    `events_url` is where Socket.IO lives (default: the API's URL). With `after` (a retry),
    only an end written later counts: until the operator acts, the old end is still there.
    `on_playable` is called once, as soon as the start plays while the rest encodes."""
    announced = False

    def playable(now: bool) -> None:
        nonlocal announced
        if now and not announced and on_playable is not None:
            announced = True
            on_playable()

    stream = None
    if live:
        stream = _live(client, video_id, listener, url=events_url, poll_seconds=poll_seconds,
                       timeout=connect_timeout)  # fmt: skip
    try:
        video = client.video(video_id)
        _report(listener, video)
        playable(video.playable_early and (after is None or video.updated_at > after))
        last_read = time.monotonic()
        while not (video.finished and (after is None or video.updated_at > after)):
            if stream is None:
                time.sleep(poll_seconds)
            elif (event := stream.next(timeout=poll_seconds)) is None:
                if time.monotonic() - last_read < QUIET_SECONDS:
                    continue
            elif event[0] == "disconnect":
                listener.note(f"lost the live connection; polling every {poll_seconds:g} s")
                stream.close()
                stream = None
            elif (phase := _report_event(listener, *event)) in FINISHED:
                stream.close()  # read how it ended now (and poll if the read lags behind)
                stream = None
            else:
                # The record is written before the event is sent: playback works now.
                playable(event[0] == TranscodeEvent.PLAYABLE and phase != "")
                continue
            video = _read(client, video_id, listener) or video
            playable(video.playable_early and (after is None or video.updated_at > after))
            last_read = time.monotonic()
    finally:
        if stream is not None:
            stream.close()
    return video
