"""413 for HTTP request bodies over a limit, before anything parses them.

A body whose Content-Length is over the limit is refused before a byte of it is read; a
chunked one is counted as it streams and refused as soon as it passes the limit. Only HTTP
requests to the FastAPI app pass here: Socket.IO (its own limit) and websockets do not.

(FastAPI's own `max_body_size` answers a declared length with plain text from outside the
app's middleware, so without the request id and CORS headers the other answers carry.)
"""

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class BodyTooLargeError(HTTPException):
    """Raised while the body streams in; FastAPI answers it like any HTTPException."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, _message(limit))


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            refusal = JSONResponse({"detail": _message(self.limit)},
                                   status_code=status.HTTP_413_CONTENT_TOO_LARGE)  # fmt: skip
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError(self.limit)
            return message

        await self.app(scope, counted, send)
