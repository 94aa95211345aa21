import io
import json

from transcode_worker.progress import ProgressTracker, emit


def block(out_us: int | str, speed: str = "2.0x", end: str = "continue") -> list[str]:
    return ["frame=10\n", f"out_time_us={out_us}\n", f"speed={speed}\n", f"progress={end}\n"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed_all(tracker: ProgressTracker, lines: list[str]) -> list[dict[str, object]]:
    return [event for line in lines if (event := tracker.feed(line)) is not None]


def test_progress_events_are_throttled_to_one_per_interval() -> None:
    clock = FakeClock()
    tracker = ProgressTracker("720p", 10.0, clock=clock)
    events = []
    for tick in range(10):  # FFmpeg reports every 0.5 s
        clock.now = tick * 0.5
        events += feed_all(tracker, block(tick * 1_000_000))
    assert len(events) == 5
    assert events[0] == {
        "event": "progress", "rendition": "720p", "percent": 0.0, "outTimeSeconds": 0.0,
        "speed": 2.0,
    }  # fmt: skip
    assert [e["percent"] for e in events] == [0.0, 20.0, 40.0, 60.0, 80.0]


def test_percent_never_goes_back_or_reaches_100_before_finish() -> None:
    clock = FakeClock()
    tracker = ProgressTracker("ladder", 4.0, clock=clock, interval=0)
    events = feed_all(tracker, block(3_000_000) + block(2_000_000) + block(9_000_000, "N/A", "end"))
    assert [e["percent"] for e in events] == [75.0, 75.0, 99.9]
    assert events[-1]["speed"] is None
    assert tracker.finish()["percent"] == 100.0


def test_blocks_without_a_time_are_skipped() -> None:
    tracker = ProgressTracker("360p", 4.0, interval=0)
    assert feed_all(tracker, block("N/A")) == []
    assert feed_all(tracker, ["garbage\n", "\n"]) == []


def test_emit_writes_one_compact_json_line() -> None:
    stream = io.StringIO()
    emit({"event": "done", "percent": 100.0}, stream)
    emit({"event": "x"}, stream)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["done", "x"]
