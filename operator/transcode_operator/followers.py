"""Following running workers' logs for their progress lines."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from transcode_operator.kube import Kube

ProgressLine = dict[str, Any]


FOLLOWED_EVENTS = ("progress", "published")  # published: an audio rendition's stored part


def progress_event(line: str) -> ProgressLine | None:
    """A worker's JSON progress (or published) line; None for anything else (stderr, other
    events)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") in FOLLOWED_EVENTS else None


class LogFollowers:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        # A follower blocks for its pod's lifetime: threads of their own keep the default
        # executor free for the API calls every pass makes.
        self.threads = ThreadPoolExecutor(thread_name_prefix="pod-logs")

    async def follow(
        self, namespace: str, pod: str, on_progress: Callable[[ProgressLine], Awaitable[None]]
    ) -> None:
        """Until the pod's log ends, call `on_progress` with each progress line."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[ProgressLine | None] = asyncio.Queue()

        def read() -> None:
            try:
                for line in self.kube.follow_log(namespace, pod):
                    if (event := progress_event(line)) is not None:
                        loop.call_soon_threadsafe(events.put_nowait, event)
            finally:
                loop.call_soon_threadsafe(events.put_nowait, None)

        reader = loop.run_in_executor(self.threads, read)
        while (event := await events.get()) is not None:
            await on_progress(event)
        await reader

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
