"""Rendition (ladder rung) specs and the default ladder."""

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

from videotranscode._model import CamelModel

_BITRATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_bitrate(value: object) -> int:
    """`3000k`, `6M`, `365000` or an int → bits per second."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _BITRATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a bitrate: {value!r} (expected e.g. 3000k, 6M or 365000)")
    number, unit = match.groups()
    return round(float(number) * _UNITS[unit.lower()])


Bitrate = Annotated[int, BeforeValidator(parse_bitrate)]


class RenditionSpec(CamelModel):
    """One rung of the ladder; `height` is the short side of the picture (portrait too)."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$")
    height: int = Field(ge=64, le=4320)
    video_bitrate: Bitrate = Field(ge=50_000, le=100_000_000)
    max_bitrate: Bitrate | None = Field(default=None, ge=50_000, le=200_000_000)
    audio_bitrate: Bitrate = Field(default=128_000, ge=16_000, le=512_000)

    @property
    def peak_video_bitrate(self) -> int:
        """The VBR cap: `maxBitrate`, or 1.5x the average (Apple allows up to 2x for VOD)."""
        return self.max_bitrate or round(self.video_bitrate * 1.5)


# Apple HLS authoring specification bitrates for H.264 at 16:9.
DEFAULT_LADDER: tuple[RenditionSpec, ...] = (
    RenditionSpec(name="360p", height=360, video_bitrate=365_000),
    RenditionSpec(name="540p", height=540, video_bitrate=2_000_000),
    RenditionSpec(name="720p", height=720, video_bitrate=3_000_000),
    RenditionSpec(name="1080p", height=1080, video_bitrate=6_000_000),
)


def select_ladder(
    rungs: tuple[RenditionSpec, ...] | list[RenditionSpec], source_short_side: int
) -> list[RenditionSpec]:
    """The rungs that fit the source's short side (never upscale); the lowest if none fits."""
    if not rungs:
        raise ValueError("the ladder needs at least one rendition")
    ordered = sorted(rungs, key=lambda rung: rung.height)
    fitting = [rung for rung in ordered if rung.height <= source_short_side]
    return fitting or ordered[:1]
