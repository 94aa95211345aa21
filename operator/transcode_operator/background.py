"""Named background tasks: at most one runs per name, and a failure is logged, not lost."""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from transcode_operator.kube import describe_error

logger = logging.getLogger(__name__)

TaskName = tuple[str, ...]


class Background:
    def __init__(self) -> None:
        self.tasks: dict[TaskName, asyncio.Task[None]] = {}

    def start(self, name: TaskName, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background unless a task of that name still runs."""
        if name in self.tasks:
            work.close()
            return
        task = asyncio.create_task(work, name="/".join(name))
        task.add_done_callback(lambda done: self._done(name, done))
        self.tasks[name] = task

    def _done(self, name: TaskName, task: asyncio.Task[None]) -> None:
        self.tasks.pop(name, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.warning("%s failed: %s", task.get_name(), describe_error(exc))

    def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
