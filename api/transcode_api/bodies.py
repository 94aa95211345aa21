"""What a request body must be before any model sees it: RFC 8259 JSON in UTF-8, nothing else.

Python's `json` module accepts more than JSON: `NaN` and `Infinity`, numbers too large for a
float (`1e309` becomes infinity), lone UTF-16 surrogates (`"\\ud800"`, which no UTF-8 encoder
takes, so neither MongoDB nor the JSON answer could store them), and nesting as deep as the
interpreter's stack. `parse_json` refuses each of those with a message that never quotes the
body, so a bad body is always a 4xx and never reaches code that cannot handle it.
"""

import json
import math
import re
from typing import Any

MAX_DEPTH = 32  # request models nest 3 levels; pydantic gives up near 200
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class MalformedBodyError(ValueError):
    """The body is not acceptable JSON; the message says why, without quoting it."""


def _refuse_constant(name: str) -> Any:
    raise MalformedBodyError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedBodyError("a number is too large")
    return value


def _check_values(document: Any) -> None:
    """Depth, and strings (keys too) free of lone surrogates; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                raise MalformedBodyError("a string contains a lone UTF-16 surrogate")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedBodyError(f"the body nests deeper than {MAX_DEPTH} levels")
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes) -> Any:
    """The JSON document in `raw`, or `MalformedBodyError`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBodyError("the body is not valid UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:  # its message names a position, never the text
        raise MalformedBodyError(f"{exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise MalformedBodyError(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # ours, or an integer of more than 4300 digits
        if isinstance(exc, MalformedBodyError):
            raise
        raise MalformedBodyError("a number is too large") from None
    _check_values(document)
    return document
