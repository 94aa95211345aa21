"""Publishing a rendition while FFmpeg still encodes it: each finished segment, then an EVENT
media playlist of those, every few seconds.

An audio rendition is encoded whole (slicing AAC leaves a gap at every join), so on a long
source it would be stored long after the first slices of the video rungs. Published as it
grows, its start is stored within seconds of the Job's start, and the audio is never what
holds back the first playable moment.
"""

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transcode_worker.measure import parse_media_playlist
from transcode_worker.playlist import with_target_duration
from transcode_worker.settings import WorkerSettings
from transcode_worker.storage import publish
from videotranscode import MEDIA_PLAYLIST

PUBLISH_INTERVAL_SECONDS = 1.0
_EVENT = "#EXT-X-PLAYLIST-TYPE:EVENT"
_VOD = "#EXT-X-PLAYLIST-TYPE:VOD"


def as_vod(media_playlist: str) -> str:
    """FFmpeg's finished EVENT playlist (it ends with EXT-X-ENDLIST) as a VOD playlist."""
    return media_playlist.replace(_EVENT, _VOD)


class GrowingPublisher:
    """Publishes `<staging>/<name>/` (FFmpeg's `-hls_playlist_type event` output) under
    `output` as it grows: `start()` before FFmpeg runs, `finish()` after it succeeded."""

    def __init__(
        self,
        staging: Path,
        name: str,
        output: str,
        settings: WorkerSettings,
        *,
        emit: Callable[[dict[str, Any]], None],
        interval: float = PUBLISH_INTERVAL_SECONDS,
    ) -> None:
        self._directory = staging / name
        self._outbox = staging.parent / f"outbox-{name}"
        self._name = name
        self._output = output
        self._settings = settings
        self._emit = emit
        self._interval = interval
        self._published: set[str] = set()
        self._stop = threading.Event()
        self._failure: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"publish-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing (FFmpeg failed, or it is done: then `finish()`)."""
        self._stop.set()
        self._thread.join()

    def finish(self) -> None:
        """What is still unpublished, then the final (VOD) playlist, once FFmpeg has succeeded
        and the playlist is final."""
        self.stop()
        if self._failure is not None:
            raise self._failure
        parsed = parse_media_playlist((self._directory / MEDIA_PLAYLIST).read_text())
        files = [uri for uri in [parsed.init_uri, *(s.uri for s in parsed.segments)] if uri]
        self._publish_files([uri for uri in files if uri not in self._published])
        publish(self._directory.parent, [f"{self._name}/{MEDIA_PLAYLIST}"], self._output,
                self._settings)  # fmt: skip

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._publish_growth()
            except Exception as exc:  # reported by finish(), which the encode reaches
                self._failure = exc
                return

    def _publish_growth(self) -> None:
        try:
            text = (self._directory / MEDIA_PLAYLIST).read_text()
        except FileNotFoundError:  # no segment finished yet
            return
        if not text.endswith("\n") or _EVENT not in text:
            return  # not a whole playlist, or not one that may grow
        parsed = parse_media_playlist(text)
        files = [uri for uri in [parsed.init_uri, *(s.uri for s in parsed.segments)] if uri]
        new = [uri for uri in files if uri not in self._published]
        if not new:
            return
        self._publish_files(new)
        box = self._outbox / self._name
        (box / MEDIA_PLAYLIST).write_text(with_target_duration(text))
        publish(self._outbox, [f"{self._name}/{MEDIA_PLAYLIST}"], self._output, self._settings)
        self._emit({
            "event": "published", "rendition": self._name, "segments": len(parsed.segments),
            "seconds": round(sum(s.duration for s in parsed.segments), 3),
        })  # fmt: skip

    def _publish_files(self, uris: list[str]) -> None:
        """Copies of finished files, so the encode's own directory stays whole for measuring."""
        box = self._outbox / self._name
        box.mkdir(parents=True, exist_ok=True)
        for uri in uris:
            shutil.copyfile(self._directory / uri, box / uri)
        publish(self._outbox, [f"{self._name}/{uri}" for uri in uris], self._output,
                self._settings)  # fmt: skip
        self._published.update(uris)
