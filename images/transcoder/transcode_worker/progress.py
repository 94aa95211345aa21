"""FFmpeg `-progress` output → throttled, monotonic JSON progress events."""

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO


def _seconds(fields: dict[str, str]) -> float | None:
    # `out_time_ms` is in microseconds too (an old FFmpeg misnomer); prefer the explicit key.
    raw = fields.get("out_time_us") or fields.get("out_time_ms")
    try:
        return max(0.0, int(raw) / 1_000_000) if raw else None
    except ValueError:
        return None


def _speed(fields: dict[str, str]) -> float | None:
    try:
        return float(fields.get("speed", "").rstrip("x"))
    except ValueError:
        return None


@dataclass
class ProgressTracker:
    """Feed FFmpeg progress lines; get at most one event per `interval` seconds.

    Percent never goes backwards and stays below 100 until `finish()`: the encode is not
    done before its outputs are measured and stored.
    """

    rendition: str
    duration_seconds: float
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    percent: float = 0.0
    _fields: dict[str, str] = field(default_factory=dict)
    _last_emit: float | None = None

    def feed(self, line: str) -> dict[str, Any] | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        if key != "progress":
            self._fields[key] = value
            return None
        fields, self._fields = self._fields, {}
        out_time = _seconds(fields)
        if out_time is None:
            return None
        share = out_time / self.duration_seconds * 100 if self.duration_seconds > 0 else 0.0
        self.percent = max(self.percent, min(99.9, round(share, 1)))
        now = self.clock()
        if self._last_emit is not None and now - self._last_emit < self.interval:
            return None
        self._last_emit = now
        return self._event(out_time, _speed(fields))

    def finish(self) -> dict[str, Any]:
        self.percent = 100.0
        return self._event(self.duration_seconds, None)

    def _event(self, out_time: float, speed: float | None) -> dict[str, Any]:
        return {
            "event": "progress",
            "rendition": self.rendition,
            "percent": self.percent,
            "outTimeSeconds": round(out_time, 3),
            "speed": speed,
        }


def emit(event: dict[str, Any], stream: TextIO = sys.stdout) -> None:
    """One JSON object per line, flushed at once so log followers see it live."""
    stream.write(json.dumps(event, separators=(",", ":")) + "\n")
    stream.flush()
