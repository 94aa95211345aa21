"""Rendition (ladder rung) specs and the default ladder."""

import re
from typing import Annotated, Self

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from videotranscode._model import CamelModel
from videotranscode.audio import AUDIO_NAME_PATTERN, is_audio_rendition

AUDIO_NAME_TAKEN = "rendition names audio-0 to audio-99 are the audio renditions'"

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


# What the API server accepts as a string bitrate (it range-checks integers only); stricter
# than parse_bitrate, which also trims whitespace.
BITRATE_PATTERN = r"^[0-9]+(\.[0-9]+)?[kKmM]?$"

Bitrate = Annotated[
    int,
    BeforeValidator(parse_bitrate),
    Field(json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": BITRATE_PATTERN}),
]


class RenditionSpec(CamelModel):
    """One rung of the ladder."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"!self.name.matches('{AUDIO_NAME_PATTERN}')", "message": AUDIO_NAME_TAKEN}
            ]
        }
    )

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$")
    """Rung name, unique in the ladder; also its output folder and part of its Job's name: 1-20
    lowercase letters, digits and hyphens, starting and ending with a letter or digit, e.g.
    720p."""
    height: int = Field(ge=64, le=4320)
    """Pixels of the picture's short side (the width of portrait video), 64-4320; the long side
    follows the source's display aspect ratio."""
    video_bitrate: Bitrate = Field(ge=50_000, le=100_000_000)
    """Average video bitrate in bits per second: an integer (3000000) or a string with an
    optional k (x1000) or M (x1000000) suffix (3000k, 3M, 1.5M); 50k to 100M. The apiserver
    range-checks integers only; the operator checks strings."""
    max_bitrate: Bitrate | None = Field(default=None, ge=50_000, le=200_000_000)
    """Peak video bitrate (the VBR cap), bits per second as an integer or a string like 4500k or
    6M; 50k to 200M. Omitted: 1.5 x videoBitrate."""
    audio_bitrate: Bitrate = Field(default=128_000, ge=16_000, le=512_000)
    """AAC audio bitrate, bits per second as an integer or a string like 96k; 16k to 512k.
    Default 128000 (128k). The sound is encoded once, in audio renditions shared by every
    rung, at the highest audioBitrate of the ladder (stereo; half for mono)."""

    @model_validator(mode="after")
    def _not_an_audio_name(self) -> Self:
        if is_audio_rendition(self.name):
            raise ValueError(AUDIO_NAME_TAKEN)
        return self

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
