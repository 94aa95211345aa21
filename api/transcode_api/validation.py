"""The answer to a malformed request (422): where and why, never what was sent.

FastAPI's default answer copies each rejected value (`input`) and what it was checked against
(`ctx`) into the body. That returned passwords to whoever sent them, and a value JSON cannot
encode (NaN, a lone surrogate) turned the 422 into a 500. Here each error keeps only its
field path (`loc`), its `type` and its reason (`msg`); a reason that would quote the value
is replaced, and path parts that are not plain field names are masked.
"""

import re
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

UNKNOWN_KEY = "<key>"  # stands for a key that is not a plain field name
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$.-]{1,64}")
MIN_QUOTE = 4  # shorter inputs are found in any sentence; they cannot be told from a quote


def _location(loc: Sequence[Any]) -> list[str | int]:
    return [
        part if isinstance(part, int) or (isinstance(part, str) and _PLAIN_KEY.fullmatch(part))
        else UNKNOWN_KEY
        for part in loc
    ]  # fmt: skip


def _message(error: dict[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if error.get("type") == "json_invalid" and isinstance(ctx.get("error"), str):
        return f"Invalid JSON: {ctx['error']}"  # the parsers name a position, never the text
    message = str(error.get("msg", "invalid value"))
    given = error.get("input")
    if isinstance(given, str) and len(given) >= MIN_QUOTE and given.lower() in message.lower():
        return "invalid value"
    return message


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's or FastAPI's error list without the values that were sent."""
    return [
        {"loc": _location(error.get("loc", ())), "msg": _message(error),
         "type": str(error.get("type", "value_error"))}
        for error in errors
    ]  # fmt: skip


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": public_errors(exc.errors())}, status_code=422)
