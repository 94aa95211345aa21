"""Live progress over Socket.IO.

Browsers connect to the default namespace with `auth: {token}` (the same JWT check as HTTP)
and join their own room `user:<id>`; `subscribe {videoId}` adds `video:<id>`, for the owner
only. The operator connects to `/internal` with the service token; each `transcode.*` event it
sends is relayed to the owner's room and the video's room.

With a Redis URL, python-socketio's Redis manager carries every emit to every API replica
(pub/sub), and each replica delivers it to the members of those rooms connected to it; the
rooms and sessions themselves stay with the replica a client is connected to. While Redis is
down, HTTP goes on and an event reaches only the clients of the replica that received it
(socketio logs "Cannot publish to redis"); events cross replicas again once it is back.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from transcode_api.models import VIDEO_ID_PATTERN
from transcode_api.security import InvalidTokenError, TokenIssuer, same_secret
from videotranscode import TranscodeEvent

logger = logging.getLogger(__name__)

INTERNAL_NAMESPACE = "/internal"
RELAYED_EVENTS = frozenset(TranscodeEvent)
_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)

OwnsVideo = Callable[[str, str], Awaitable[bool]]  # (user id, video id) → owned?
UserExists = Callable[[str], Awaitable[bool]]


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def video_room(video_id: str) -> str:
    return f"video:{video_id}"


def _token(auth: object) -> object:
    return auth.get("token") if isinstance(auth, dict) else None


def _video_id(data: object) -> str | None:
    video_id = data.get("videoId") if isinstance(data, dict) else None
    return video_id if isinstance(video_id, str) and _VIDEO_ID.match(video_id) else None


def same_origin(environ: dict[str, Any]) -> set[str]:
    """The page origins that are this server itself (also as seen behind a proxy)."""
    scheme, host = environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", "")
    forwarded_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
    return {f"{scheme}://{host}", f"{forwarded_scheme}://{forwarded_host}"}


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager, which replaces its clients on every reconnect without
    closing them (a connection left open per outage): here the replaced ones are closed, and
    `stop` ends the listener and closes the rest before the event loop closes. The attributes
    are python-socketio's own."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._closing: set[asyncio.Task[None]] = set()

    def _redis_connect(self) -> None:
        replaced = [getattr(self, name, None) for name in ("pubsub", "redis")]
        super()._redis_connect()
        for client in replaced:
            if client is not None:
                closing = asyncio.ensure_future(client.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        listener = getattr(self, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        for name in ("pubsub", "redis"):
            if (client := getattr(self, name, None)) is not None:
                await client.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)


async def stop(sio: socketio.AsyncServer) -> None:
    """Close what the Socket.IO server holds open beyond its clients (Redis connections)."""
    if isinstance(sio.manager, RedisManager):
        await sio.manager.stop()


def origin_check(allowed: list[str]) -> Callable[[str, dict[str, Any]], bool]:
    """Browsers may connect from this server's own pages and from `allowed` origins only."""
    return lambda origin, environ: origin in allowed or origin in same_origin(environ)


def create_server(
    *, tokens: TokenIssuer, service_token: str | None, user_exists: UserExists,
    owns_video: OwnsVideo,
    cors_origins: list[str],
    redis_url: str | None = None,
) -> socketio.AsyncServer:  # fmt: skip
    manager = None if redis_url is None else RedisManager(redis_url)
    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins=origin_check(cors_origins), logger=False,
        engineio_logger=False, client_manager=manager,
    )  # fmt: skip

    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        """A browser connects: its token decides its user room."""
        try:
            user_id = tokens.user_id(_token(auth))
        except InvalidTokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from exc
        if not await user_exists(user_id):  # the same check as HTTP's
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        await sio.save_session(sid, {"user": user_id})
        await sio.enter_room(sid, user_room(user_id))

    async def subscribe(sid: str, data: object = None) -> dict[str, Any]:
        """Follow one video's events; only its owner may."""
        video_id = _video_id(data)
        session = await sio.get_session(sid)
        if video_id is None or not await owns_video(session["user"], video_id):
            return {"ok": False, "error": "video not found"}
        await sio.enter_room(sid, video_room(video_id))
        return {"ok": True}

    async def unsubscribe(sid: str, data: object = None) -> dict[str, Any]:
        """Stop following a video."""
        if (video_id := _video_id(data)) is not None:
            await sio.leave_room(sid, video_room(video_id))
        return {"ok": True}

    async def internal_connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        """The operator connects with the service token; anyone else is refused."""
        if service_token is None or not same_secret(_token(auth), service_token):
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")

    async def relay(event: str, sid: str, data: object = None) -> None:
        """An operator update: to the owner's room and the video's room."""
        if event not in RELAYED_EVENTS or not isinstance(data, dict):
            return
        video_id, owner = _video_id(data), data.get("owner")
        if video_id is None or not isinstance(owner, str):
            logger.warning("dropping %s without videoId/owner", event)
            return
        payload = {key: value for key, value in data.items() if key != "owner"}
        await sio.emit(event, payload, to=[user_room(owner), video_room(video_id)])

    sio.on("connect", connect)
    sio.on("subscribe", subscribe)
    sio.on("unsubscribe", unsubscribe)
    sio.on("connect", internal_connect, namespace=INTERNAL_NAMESPACE)
    sio.on("*", relay, namespace=INTERNAL_NAMESPACE)
    return sio
