"""A real player (hls.js in Chromium) on the worker's ladder with two audio renditions: it
lists both tracks by name, starts with the source's default one, keeps sound and pictures on
one timeline, and switches tracks while playing."""

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import ffmpeg, run_worker
from playwright.sync_api import Page

HLS_JS = Path(__file__).resolve().parents[2] / "api/transcode_api/web/node_modules/hls.js/dist"
PLAYER = """<!doctype html><video id="v" muted playsinline></video>
<script src="hls.min.js"></script>
<script>
window.errors = [];
window.sourceBuffers = {};
const video = document.getElementById("v");
window.hls = new Hls();
hls.on(Hls.Events.ERROR, (_, data) => errors.push(
  `${data.type}:${data.details}${data.fatal ? " (fatal)" : ""}`));
hls.on(Hls.Events.BUFFER_CREATED, (_, data) => {
  for (const [type, track] of Object.entries(data.tracks)) sourceBuffers[type] = track.buffer;
});
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
hls.loadSource("hls/master.m3u8");
hls.attachMedia(video);
window.buffered = (type) => {
  const ranges = sourceBuffers[type].buffered;
  return ranges.length ? [ranges.start(0), ranges.end(ranges.length - 1)] : null;
};
</script>
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ladder of a 7 s source with English and German sound (German the default), with
    hls.js and a page that plays it, served on loopback."""
    root = tmp_path_factory.mktemp("site")
    source = root / "source.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=7",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=7",
        "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000:duration=7",
        "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata:s:a:0", "language=eng",
        "-metadata:s:a:1", "language=ger", "-disposition:a:0", "0",
        "-disposition:a:1", "default", str(source),
    )  # fmt: skip
    run = run_worker("ladder", str(source), str(root / "hls"), "--renditions", "180p:180:300k",
                     "--segment-seconds", "2")  # fmt: skip
    assert run.returncode == 0, run.stderr
    (root / "hls.min.js").write_bytes((HLS_JS / "hls.min.js").read_bytes())
    (root / "index.html").write_text(PLAYER)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def autoplay() -> bool:
    return True  # as the player would, though this page's video is muted


@pytest.fixture
def page(open_page: Callable[..., Page], site: str) -> Page:
    page = open_page(timeout_ms=30_000)  # Playwright's default
    page.goto(site)
    return page


def test_hlsjs_plays_the_default_track_in_sync_and_switches(page: Page) -> None:
    page.wait_for_function("document.getElementById('v').currentTime > 2.5", timeout=60_000)
    tracks = page.evaluate("hls.audioTracks.map((t) => [t.name, t.lang, t.default])")
    assert tracks == [["English", "en", False], ["Deutsch", "de", True]]
    assert page.evaluate("hls.audioTrack") == 1  # the source's default, not the first
    # One timeline: the player lays sound and pictures out from the same start.
    video, audio = page.evaluate("[buffered('video'), buffered('audio')]")
    assert abs(video[0] - audio[0]) < 0.05, (video, audio)
    assert video[1] == pytest.approx(7, abs=0.1)
    assert audio[1] == pytest.approx(7, abs=0.1)
    playing = page.evaluate("document.getElementById('v').currentTime")
    page.evaluate("hls.audioTrack = 0")
    page.wait_for_function(
        f"hls.audioTrack === 0 && document.getElementById('v').currentTime > {playing + 1}",
        timeout=60_000,
    )
    # A switch flushes and refetches the sound: on a starved machine the player may wait for
    # it (a buffer stall hls.js recovers from by itself, as it has since it plays on).
    assert [e for e in page.evaluate("errors") if e != "mediaError:bufferStalledError"] == []
