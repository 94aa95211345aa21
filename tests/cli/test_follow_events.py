"""The CLI reads the live events with the contract's payload models, as the relay sends them."""

from typing import Any

from hlsforge_cli.follow import _report_event
from hlsforge_cli.models import Rendition
from videotranscode import EndedPayload, ProgressPayload, TranscodeEvent, VideoTranscodeStatus

STATUS = VideoTranscodeStatus.model_validate({
    "phase": "Failed", "progress": 50, "message": "the 720p worker failed",
    "renditions": [{"name": "360p", "phase": "Succeeded", "progress": 100,
                    "resolution": "640x360", "bandwidth": 500000},
                   {"name": "720p", "phase": "Failed", "progress": 0, "message": "exit 1"}],
})  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def phase(self, phase: str, progress: float, renditions: list[Rendition]) -> None:
        self.calls.append(("phase", phase, progress, renditions))

    def rendition(self, name: str, percent: float) -> None:
        self.calls.append(("rendition", name, percent))

    def note(self, message: str) -> None:
        self.calls.append(("note", message))


def relayed(payload: Any) -> dict[str, Any]:
    """What the API relays: the operator's payload without `owner`."""
    return {key: value for key, value in payload.wire().items() if key != "owner"}


def test_a_progress_event_tells_one_renditions_percent() -> None:
    recorder = Recorder()
    payload = ProgressPayload(video_id="v", owner="u", rendition="720p", percent=12.5, speed=2)
    assert _report_event(recorder, TranscodeEvent.PROGRESS, relayed(payload)) == ""
    assert recorder.calls == [("rendition", "720p", 12.5)]


def test_an_ending_event_tells_the_whole_state_and_its_phase() -> None:
    recorder = Recorder()
    payload = EndedPayload(video_id="v", owner="u", phase=STATUS.phase, progress=STATUS.progress,
                           renditions=STATUS.renditions, message=STATUS.message)  # fmt: skip
    assert _report_event(recorder, TranscodeEvent.FAILED, relayed(payload)) == "failed"
    renditions = [
        Rendition(name="360p", phase="Succeeded", progress=100, resolution="640x360",
                  bandwidth=500000),
        Rendition(name="720p", phase="Failed", progress=0, message="exit 1"),
    ]  # fmt: skip
    assert recorder.calls == [("phase", "failed", 50, renditions)]


def test_an_event_it_cannot_read_is_skipped() -> None:
    recorder = Recorder()
    assert _report_event(recorder, TranscodeEvent.PHASE, {"videoId": "v", "phase": 3}) == ""
    assert _report_event(recorder, "transcode.unknown", {"videoId": "v"}) == ""
    assert recorder.calls == []
