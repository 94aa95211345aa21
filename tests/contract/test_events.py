"""The realtime events' payloads: what the operator sends today, key for key, read back."""

from typing import Any

import pytest
from pydantic import ValidationError

from videotranscode import (
    ENDING_EVENTS,
    EndedPayload,
    Phase,
    PhasePayload,
    ProgressPayload,
    SucceededPayload,
    TranscodeEvent,
    VideoTranscodeStatus,
    parse_payload,
)

STATUS = VideoTranscodeStatus.model_validate({
    "phase": "Succeeded",
    "progress": 100,
    "renditions": [
        {"name": "360p", "phase": "Succeeded", "progress": 100, "jobName": "v-360p",
         "bandwidth": 500000, "resolution": "640x360", "playlist": "360p/index.m3u8"},
        {"name": "720p", "phase": "Running", "progress": 42.5},
    ],
    "playback": {"masterPlaylist": "s3://out/v/master.m3u8", "thumbnail": "v/poster.jpg"},
    "message": "done",
})  # fmt: skip


def sent_today(status: VideoTranscodeStatus) -> dict[str, Any]:
    """The payload of `transcode.phase` as the operator built it by hand before the models."""
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {"videoId": "v1", "owner": "u1", "phase": dumped["phase"],
            "progress": dumped["progress"], "renditions": dumped["renditions"]}  # fmt: skip


def phase_fields(status: VideoTranscodeStatus) -> dict[str, Any]:
    return {"video_id": "v1", "owner": "u1", "phase": status.phase, "progress": status.progress,
            "renditions": status.renditions}  # fmt: skip


def test_the_phase_payloads_keep_the_keys_and_values_sent_today() -> None:
    phase = PhasePayload(**phase_fields(STATUS))
    assert phase.wire() == sent_today(STATUS)
    succeeded = SucceededPayload(**phase_fields(STATUS), playback=STATUS.playback)
    playback = STATUS.model_dump(mode="json", by_alias=True, exclude_none=True)["playback"]
    assert succeeded.wire() == {**sent_today(STATUS), "playback": playback}
    failed = EndedPayload(**phase_fields(STATUS), message=None)
    assert failed.wire() == {**sent_today(STATUS), "message": None}


def test_the_progress_payload_keeps_the_keys_sent_today() -> None:
    progress = ProgressPayload(video_id="v1", owner="u1", rendition="720p", percent=12.5,
                               out_time_seconds=3.2, speed=None)  # fmt: skip
    assert progress.wire() == {"videoId": "v1", "owner": "u1", "rendition": "720p",
                               "percent": 12.5, "outTimeSeconds": 3.2, "speed": None}  # fmt: skip


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        (TranscodeEvent.PROGRESS, ProgressPayload(video_id="v1", rendition="1080p", percent=99)),
        (TranscodeEvent.PHASE, PhasePayload(**phase_fields(STATUS))),
        (TranscodeEvent.SUCCEEDED, SucceededPayload(**phase_fields(STATUS), playback=None)),
        (TranscodeEvent.FAILED, EndedPayload(**phase_fields(STATUS), message="bad input")),
        (TranscodeEvent.CANCELLED, EndedPayload(**phase_fields(STATUS), message=None)),
    ],
)
def test_each_payload_reads_back_as_sent(event: TranscodeEvent, payload: Any) -> None:
    assert parse_payload(event, payload.wire()) == payload


def test_readers_ignore_unknown_fields_and_do_without_the_owner() -> None:
    relayed = {k: v for k, v in sent_today(STATUS).items() if k != "owner"}
    relayed["renditions"][1]["newerField"] = 1
    read = parse_payload(TranscodeEvent.PHASE, {**relayed, "newerField": True})
    assert read == PhasePayload(**{**phase_fields(STATUS), "owner": None})


def test_a_payload_that_is_not_one_is_a_value_error() -> None:
    with pytest.raises(ValidationError):
        parse_payload(TranscodeEvent.PROGRESS, {"videoId": "v1", "percent": "a lot"})
    with pytest.raises(ValueError, match="videoId"):
        parse_payload(TranscodeEvent.PHASE, {"phase": "Probing", "progress": 0, "renditions": []})


def test_every_end_of_a_transcode_has_its_event() -> None:
    assert set(ENDING_EVENTS) == {phase for phase in Phase if phase.finished}
    assert set(ENDING_EVENTS.values()) == set(TranscodeEvent) - {
        TranscodeEvent.PROGRESS,
        TranscodeEvent.PHASE,
        TranscodeEvent.PLAYABLE,
    }
