"""Showing an upload and a transcode as they go: rich progress bars on a terminal, a few
plain lines otherwise (every 10 % of an upload, every 25 % of a rendition, each phase).
All of it goes to stderr, so stdout keeps only results."""

import sys
import threading
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hlsforge_cli.models import Rendition

UPLOAD_STEP = 10  # plain output: a line every 10 % uploaded
RENDITION_STEP = 25  # and every 25 % of a rendition


def _plain(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Bars:
    """A started `rich.progress.Progress`, stopped on exit."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.lock = threading.Lock()

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()


class RichUpload(_Bars):
    """One bar for the file and, for a multipart upload, one for each part in flight."""

    def __init__(self, console: Console, label: str) -> None:
        super().__init__(Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=console,
        ))  # fmt: skip
        self.label = label
        self.overall: TaskID | None = None
        self.parts: dict[int, TaskID] = {}
        self.sent_bytes: dict[int, int] = {}
        self.before = 0
        self.multipart = False

    def begin(self, *, total: int, parts: int, done_parts: int, done_bytes: int) -> None:
        self.before, self.multipart = done_bytes, parts > 1
        label = self.label + (f" ({done_parts}/{parts} parts done)" if done_parts else "")
        self.overall = self.progress.add_task(f"upload {label}", total=total, completed=done_bytes)

    def sent(self, part: int, size: int, sent: int) -> None:
        with self.lock:
            self.sent_bytes[part] = sent
            if self.multipart:
                if part not in self.parts:
                    self.parts[part] = self.progress.add_task(f"  part {part}", total=size)
                self.progress.update(self.parts[part], completed=sent)
            if self.overall is not None:
                total = self.before + sum(self.sent_bytes.values())
                self.progress.update(self.overall, completed=total)

    def part_done(self, part: int) -> None:
        with self.lock:
            if (task := self.parts.pop(part, None)) is not None:
                self.progress.remove_task(task)

    def end(self) -> None:
        if self.overall is not None:
            task = self.progress.tasks[self.overall]
            self.progress.update(self.overall, completed=task.total)


class PlainUpload:
    def __init__(self, label: str) -> None:
        self.label = label
        self.lock = threading.Lock()
        self.total = 1
        self.before = 0
        self.sent_bytes: dict[int, int] = {}
        self.step = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def begin(self, *, total: int, parts: int, done_parts: int, done_bytes: int) -> None:
        self.total, self.before = max(total, 1), done_bytes
        how = f" in {parts} parts" if parts > 1 else ""
        resumed = f", {done_parts} already uploaded" if done_parts else ""
        _plain(f"uploading {self.label}: {decimal(total)}{how}{resumed}")

    def sent(self, part: int, size: int, sent: int) -> None:
        with self.lock:
            self.sent_bytes[part] = sent
            done = self.before + sum(self.sent_bytes.values())
            step = int(done * 100 / self.total) // UPLOAD_STEP * UPLOAD_STEP
            if step > self.step and step < 100:
                self.step = step
                _plain(f"uploaded {step}%")

    def part_done(self, part: int) -> None:
        pass

    def end(self) -> None:
        _plain("uploaded 100%")


class RichTranscode(_Bars):
    """One bar for the whole transcode (its phase beside it) and one per rendition."""

    def __init__(self, console: Console) -> None:
        super().__init__(Progress(
            TextColumn("{task.description:<12}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[state]}"), console=console,
        ))  # fmt: skip
        self.overall = self.progress.add_task("transcode", total=100, state="")
        self.renditions: dict[str, TaskID] = {}

    def _rendition(self, name: str, percent: float, state: str) -> None:
        if name not in self.renditions:
            self.renditions[name] = self.progress.add_task(f"  {name}", total=100, state="")
        task = self.progress.tasks[self.renditions[name]]
        if state == "pending" and task.fields["state"] not in ("", "pending"):
            state = task.fields["state"]  # a late snapshot; live progress said more
        self.progress.update(task.id, completed=max(task.completed, percent), state=state)

    def _overall(self) -> None:
        """The API's figure lags between status writes; the renditions' mean does not."""
        tasks = [self.progress.tasks[task] for task in self.renditions.values()]
        mean = sum(task.completed for task in tasks) / len(tasks) if tasks else 0
        overall = self.progress.tasks[self.overall]
        self.progress.update(self.overall, completed=max(overall.completed, mean))

    def phase(self, phase: str, progress: float, renditions: list[Rendition]) -> None:
        with self.lock:
            self.progress.update(self.overall, completed=progress, state=phase)
            for rendition in renditions:
                self._rendition(rendition.name, rendition.progress, rendition.phase.lower())
            self._overall()

    def rendition(self, name: str, percent: float) -> None:
        with self.lock:
            self._rendition(name, percent, "running")
            self._overall()

    def note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]{escape(message)}[/]", highlight=False)


class PlainTranscode:
    def __init__(self) -> None:
        self.last_phase = ""
        self.steps: dict[str, int] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def phase(self, phase: str, progress: float, renditions: list[Rendition]) -> None:
        if phase != self.last_phase:
            self.last_phase = phase
            _plain(f"phase: {phase} ({progress:.0f}%)")
        for rendition in renditions:
            self.rendition(rendition.name, rendition.progress)

    def rendition(self, name: str, percent: float) -> None:
        step = int(percent) // RENDITION_STEP * RENDITION_STEP
        if step > self.steps.get(name, -1):
            self.steps[name] = step
            _plain(f"  {name}: {step}%")

    def note(self, message: str) -> None:
        _plain(message)
