"""The live events the operator sends through the API's Socket.IO relay to browsers and the CLI,
and their payloads (camelCase on the wire).

The operator sends `owner` so the relay can route an event to the owner's room; the relay
strips it, so browsers and the CLI receive the rest. Readers ignore fields they do not know,
so an older CLI keeps following a newer operator.
"""

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, field_serializer

from videotranscode._model import CamelModel
from videotranscode.resource import Phase, Playback, RenditionStatus


class TranscodeEvent(StrEnum):
    PROGRESS = "transcode.progress"  # a rendition's worker reported progress
    PHASE = "transcode.phase"  # the transcode changed phase
    PLAYABLE = "transcode.playable"  # the start can be played while the rest encodes
    SUCCEEDED = "transcode.succeeded"
    FAILED = "transcode.failed"
    CANCELLED = "transcode.cancelled"


# The event that announces each end of a transcode (after its `transcode.phase`).
ENDING_EVENTS = {
    Phase.SUCCEEDED: TranscodeEvent.SUCCEEDED,
    Phase.FAILED: TranscodeEvent.FAILED,
    Phase.CANCELLED: TranscodeEvent.CANCELLED,
}


class EventPayload(CamelModel):
    model_config = ConfigDict(extra="ignore")

    video_id: str
    owner: str | None = None  # for the relay only: it strips the field before relaying

    def wire(self) -> dict[str, Any]:
        """The payload as sent: every field, `null` included."""
        return self.model_dump(mode="json", by_alias=True)


class ProgressPayload(EventPayload):
    """`transcode.progress`: one rendition's worker, as far as it got."""

    rendition: str
    percent: float
    out_time_seconds: float | None = None
    speed: float | None = None  # times real time


class PhasePayload(EventPayload):
    """`transcode.phase`: the whole state of the transcode."""

    phase: Phase
    progress: float
    renditions: list[RenditionStatus]

    @field_serializer("renditions")
    def _renditions(self, renditions: list[RenditionStatus]) -> list[dict[str, Any]]:
        return [_as_in_status(rendition) for rendition in renditions]


class SucceededPayload(PhasePayload):
    """`transcode.succeeded`: the state, and where to play the result."""

    playback: Playback | None

    @field_serializer("playback")
    def _playback(self, playback: Playback | None) -> dict[str, Any] | None:
        return None if playback is None else _as_in_status(playback)


class PlayablePayload(SucceededPayload):
    """`transcode.playable`: the state, where to play, and since when. Sent once, when the
    master playlist is first published; playback then grows until `transcode.succeeded`."""

    playable_at: str


class EndedPayload(PhasePayload):
    """`transcode.failed` and `transcode.cancelled`: the state, and why."""

    message: str | None


PAYLOADS: dict[TranscodeEvent, type[EventPayload]] = {
    TranscodeEvent.PROGRESS: ProgressPayload,
    TranscodeEvent.PHASE: PhasePayload,
    TranscodeEvent.PLAYABLE: PlayablePayload,
    TranscodeEvent.SUCCEEDED: SucceededPayload,
    TranscodeEvent.FAILED: EndedPayload,
    TranscodeEvent.CANCELLED: EndedPayload,
}


def parse_payload(event: TranscodeEvent, data: object) -> EventPayload:
    """The payload of `event`; a `pydantic.ValidationError` (a `ValueError`) if it is not one."""
    return PAYLOADS[event].model_validate(data)


def _as_in_status(model: CamelModel) -> dict[str, Any]:
    # The status's nested objects travel as the status stores them: unset fields left out.
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
