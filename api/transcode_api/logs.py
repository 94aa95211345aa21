"""Structured JSON logs, each line of a request carrying its request id."""

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_PLAYBACK_TOKEN = re.compile(r"(/api/v1/playback/)[^/\s]+")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_logger = logging.getLogger("transcode_api.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := request_id.get()) is not None:
            entry["requestId"] = rid
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


class RequestLogMiddleware:
    """Gives each HTTP request an id (the client's `X-Request-ID` when sane), returns it in
    the response, and logs one line per request. The line names the route template, never
    the raw path: playback paths carry tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _CLIENT_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            access_logger.info("request", extra={"fields": {
                "method": scope["method"], "route": getattr(route, "path", "unmatched"),
                "status": status, "ms": round((time.perf_counter() - started) * 1000, 1),
            }})  # fmt: skip
            request_id.reset(token)


class RedactPlaybackTokens(logging.Filter):
    """Under plain `uvicorn transcode_api.main:app`, uvicorn's own access log names raw paths,
    and playback paths carry tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _PLAYBACK_TOKEN.sub(r"\1{token}", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_uvicorn_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactPlaybackTokens) for existing in access.filters):
        access.addFilter(RedactPlaybackTokens())
