"""What the commands print. Results go to stdout, everything else to stderr. On a terminal
that is rich tables, colours and progress bars; otherwise plain lines that scripts can read
(tab-separated lists, `key: value` details, a URL alone on the last line)."""

import json
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hlsforge_cli.models import Playback, Video
from hlsforge_cli.progress import PlainTranscode, PlainUpload, RichTranscode, RichUpload
from videotranscode import VideoPhase

PHASE_STYLES: dict[str, str] = {
    VideoPhase.SUCCEEDED: "green",
    VideoPhase.FAILED: "red",
    VideoPhase.CANCELLED: "yellow",
}


def _phase(phase: str) -> str:
    style = PHASE_STYLES.get(phase, "cyan")
    return f"[{style}]{phase}[/]"


def _resolution_and_rate(resolution: str | None, bandwidth: int | None) -> str:
    parts = [resolution or "", f"{bandwidth / 1000:.0f} kb/s" if bandwidth else ""]
    return " ".join(part for part in parts if part)


class Output:
    """Where and how to print; `rich_out`/`rich_err`: stdout/stderr is a terminal."""

    def __init__(self, *, rich_out: bool | None = None, rich_err: bool | None = None) -> None:
        self.rich_out = sys.stdout.isatty() if rich_out is None else rich_out
        self.rich_err = sys.stderr.isatty() if rich_err is None else rich_err
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    # --- lines ------------------------------------------------------------------------------

    def result(self, text: str) -> None:
        """A result on stdout, whole on one line (URLs are never wrapped)."""
        if self.rich_out:
            self.out.print(text, markup=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def info(self, text: str) -> None:
        if self.rich_err:
            self.err.print(text, markup=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def error(self, text: str) -> None:
        if self.rich_err:
            self.err.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)
        else:
            print(f"error: {text}", file=sys.stderr, flush=True)

    def json(self, data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
        """As the API writes it (camelCase)."""

        def plain(value: Any) -> Any:
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json", by_alias=True)
            if isinstance(value, dict):
                return {key: plain(item) for key, item in value.items()}
            if isinstance(value, list | tuple):
                return [plain(item) for item in value]
            return value

        print(json.dumps(plain(data), indent=2), flush=True)

    # --- progress ---------------------------------------------------------------------------

    def upload_progress(self, label: str) -> RichUpload | PlainUpload:
        return RichUpload(self.err, label) if self.rich_err else PlainUpload(label)

    def transcode_progress(self) -> RichTranscode | PlainTranscode:
        return RichTranscode(self.err) if self.rich_err else PlainTranscode()

    # --- videos -----------------------------------------------------------------------------

    def videos(self, videos: Sequence[Video]) -> None:
        """A table; plain: `id<TAB>phase<TAB>progress<TAB>title`, one video a line."""
        if not self.rich_out:
            for video in videos:
                print(f"{video.id}\t{video.phase}\t{video.progress:.0f}%\t{video.title}")
            return
        if not videos:
            self.out.print("no videos")
            return
        table = Table("ID", "Title", "Phase", "Progress", "Created", box=None)
        for video in videos:
            created = video.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            table.add_row(video.id, escape(video.title), _phase(video.phase),
                          f"{video.progress:.0f}%", created)  # fmt: skip
        self.out.print(table)

    def video(self, video: Video, playback: Playback | None) -> None:
        """Details; plain: `key: value` lines, one `rendition NAME: …` line per rendition,
        and `playback: URL` last when it can be played."""
        fields = [("id", video.id), ("title", video.title), ("file", video.filename),
                  ("phase", video.phase), ("progress", f"{video.progress:.0f}%")]  # fmt: skip
        if video.error:
            fields.append(("error", video.error))
        if video.playable_early and video.playable_at is not None:
            fields.append(("playable", f"since {video.playable_at.isoformat()}, while it encodes"))
        if not self.rich_out:
            for key, value in fields:
                print(f"{key}: {value}")
            for r in video.renditions:
                detail = _resolution_and_rate(r.resolution, r.bandwidth)
                print(f"rendition {r.name}: {r.phase.lower()} {r.progress:.0f}% {detail}".rstrip())
            if playback is not None:
                print(f"playback: {playback.master_url}", flush=True)
            return
        grid = Table.grid(padding=(0, 2))
        for key, value in fields:
            grid.add_row(f"[bold]{key}[/]", _phase(value) if key == "phase" else escape(value))
        self.out.print(grid)
        if video.renditions:
            table = Table("Rendition", "Phase", "Progress", "Resolution", box=None)
            for r in video.renditions:
                table.add_row(r.name, r.phase.lower(), f"{r.progress:.0f}%",
                              _resolution_and_rate(r.resolution, r.bandwidth))  # fmt: skip
            self.out.print(table)
        if playback is not None:
            self.out.print("[bold]playback[/]")
            self.out.print(playback.master_url, markup=False, soft_wrap=True)
