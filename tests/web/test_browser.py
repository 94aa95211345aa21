"""The web app in headless Chromium against the whole stack of `make dev`.

Sign up in the page, upload a generated clip through the file input, watch the upload and
each rendition's progress (driven by Socket.IO) reach done, then play the result with hls.js
and check that it plays and offers more than one quality. Chromium is the system one
(`make test` installs it); without it these tests fail, they never skip.
"""

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import make_clip
from playwright.sync_api import Page, Request, Route, expect

from transcode_api.uploads import NOT_MEDIA

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TRANSCODE_TIMEOUT_MS = 90_000
MULTIPART_THRESHOLD = 100 * 1024 * 1024  # the API's default, which the stack keeps

# Every value any <progress> takes, and every phase a video shows, in order, as the page
# changes them: the test reads the history instead of sampling the page.
RECORDER = """
window.__progress = [];
window.__phases = [];
const record = (el) => {
  if (el.tagName === "PROGRESS") {
    const rendition = el.closest("[data-rendition]");
    window.__progress.push({
      testid: el.dataset.testid || "",
      rendition: rendition ? rendition.dataset.rendition : null,
      value: Number(el.getAttribute("value")),
    });
  } else if (el.dataset.testid === "video-item" && el.dataset.phase) {
    window.__phases.push(el.dataset.phase);
  }
};
new MutationObserver((mutations) => {
  for (const mutation of mutations) {
    if (mutation.type === "attributes") record(mutation.target);
    for (const node of mutation.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      record(node);
      node.querySelectorAll("progress, [data-testid=video-item]").forEach(record);
    }
  }
}).observe(document, {
  subtree: true, childList: true, attributes: true, attributeFilter: ["value", "data-phase"],
});
"""


@pytest.fixture
def page(open_page: Callable[..., Page], dev_stack: str) -> Page:
    """A fresh browser context on the running stack."""
    return open_page(dev_stack, timeout_ms=15_000, viewport={"width": 1100, "height": 900},
                     init_scripts=(RECORDER,))  # fmt: skip


def sign_up(page: Page) -> str:
    """Create an account through the form; returns its email. The list loads once the live
    connection is up, so an empty list also means Socket.IO is connected."""
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    page.goto("/")
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill("a long enough password")
    page.get_by_test_id("auth-name").fill("Web <b>Tester</b>")
    page.get_by_test_id("sign-up").click()
    expect(page.get_by_test_id("library-view")).to_be_visible()
    expect(page.get_by_test_id("session-user")).to_have_text("Web <b>Tester</b>")  # as text
    expect(page.get_by_test_id("videos-empty")).to_be_visible()
    return email


def values(
    progress: list[dict[str, Any]], testid: str, rendition: str | None = None
) -> list[float]:
    """The values one kind of progress bar took, in order."""
    return [
        float(p["value"])
        for p in progress
        if p["testid"] == testid and rendition in (None, p["rendition"])
    ]


def between(series: list[float]) -> list[float]:
    return [value for value in series if 0 < value < 100]


def upload(page: Page, path: Path, title: str) -> None:
    page.get_by_test_id("upload-title").fill(title)
    page.get_by_test_id("file-input").set_input_files(path)
    page.get_by_test_id("upload-button").click()


def test_sign_up_upload_follow_live_and_play(page: Page, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="960x540", seconds=4)  # rungs 360p and 540p
    list_requests: list[str] = []
    page.on("request", lambda request: list_requests.append(request.url)
            if re.search(r"/api/v1/videos\?", request.url) else None)  # fmt: skip
    sign_up(page)

    # On loopback the clip would go up in one step: slow the upload so its progress shows.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": clip.stat().st_size // 2,  # bytes per second: about 2 s
    })  # fmt: skip
    upload(page, clip, "Browser clip")
    expect(page.get_by_test_id("upload-status")).to_contain_text("Transcoding starts")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1
    })  # fmt: skip
    item = page.get_by_test_id("video-item").filter(has_text="Browser clip")
    expect(item).to_have_attribute("data-phase", "succeeded", timeout=TRANSCODE_TIMEOUT_MS)
    expect(page.get_by_test_id("upload-progress")).to_have_attribute("value", "100")
    expect(page.get_by_test_id("upload-error")).to_be_hidden()

    renditions = item.get_by_test_id("rendition")
    expect(renditions).to_have_count(3)  # the sound is its own rendition
    for rung in ("audio-0", "360p", "540p"):
        rendition = renditions.filter(has_text=rung)
        expect(rendition).to_have_attribute("data-phase", "succeeded")
        expect(rendition.get_by_test_id("rendition-progress")).to_have_attribute("value", "100")
        expect(rendition.get_by_test_id("rendition-percent")).to_have_text("done")

    progress: list[dict[str, Any]] = page.evaluate("window.__progress")
    uploaded = values(progress, "upload-progress")
    assert uploaded[-1] == 100
    assert between(uploaded), f"no upload progress between 0 and 100: {uploaded}"
    for rung in ("360p", "540p"):
        live = values(progress, "rendition-progress", rung)
        assert between(live), f"no {rung} progress between 0 and 100: {live}"
        assert live == sorted(live), f"{rung} progress went backwards: {live}"
        assert live[-1] == 100
    phases: list[str] = page.evaluate("window.__phases")
    assert phases[0] == "awaiting_upload"
    assert phases[-1] == "succeeded"
    # Live updates came over Socket.IO: the list was fetched once, when it connected.
    assert len(list_requests) == 1, list_requests
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "videos.png", full_page=True)

    item.get_by_test_id("play").click()
    expect(page).to_have_url(re.compile(r"#/watch/[0-9a-f]{24}$"))
    expect(page.get_by_test_id("player-title")).to_have_text("Browser clip")
    quality = page.get_by_test_id("quality-select")
    expect(quality).to_be_enabled()
    expect(quality.locator("option")).to_have_text([
        "Auto", re.compile(r"^540p \(\d+ kbit/s\)$"), re.compile(r"^360p \(\d+ kbit/s\)$")
    ])  # fmt: skip
    player = page.get_by_test_id("player")
    expect(player).to_have_attribute("poster", re.compile(r"poster\.jpg"))
    page.wait_for_function(
        "() => { const v = document.getElementById('player');"
        " return v.currentTime > 1 && !v.paused && v.readyState >= 3; }",
        timeout=20_000,
    )
    levels = page.evaluate("window.hlsforgePlayer.hls.levels.map((level) => level.height)")
    assert sorted(levels) == [360, 540]
    expect(page.get_by_test_id("player-error")).to_be_hidden()
    page.screenshot(path=ARTIFACTS / "player.png", full_page=True)

    quality.select_option(label=quality.locator("option").nth(2).inner_text())  # 360p
    assert page.evaluate("window.hlsforgePlayer.hls.autoLevelEnabled") is False
    quality.select_option("-1")
    assert page.evaluate("window.hlsforgePlayer.hls.autoLevelEnabled") is True

    # Back to the list before the playback URLs arrive: that player never starts.
    page.get_by_test_id("player-back").click()
    expect(page.get_by_test_id("library-view")).to_be_visible()
    assert page.evaluate("window.hlsforgePlayer") is None
    held: list[Route] = []

    def hold(route: Route) -> None:  # Playwright needs a Python function, not list.append
        held.append(route)

    page.route(re.compile(r"/playback$"), hold)
    playlists: list[str] = []
    page.on("request", lambda request: playlists.append(request.url)
            if "/master.m3u8" in request.url else None)  # fmt: skip
    item.get_by_test_id("play").click()
    page.wait_for_function("() => !document.getElementById('player-view').hidden")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the player did not ask for the playback URLs"
    page.get_by_test_id("player-back").click()
    expect(page.get_by_test_id("library-view")).to_be_visible()
    with page.expect_event("requestfinished", lambda r: r.url.endswith("/playback")):
        held[0].continue_()
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 500))")
    assert page.evaluate("window.hlsforgePlayer") is None
    assert playlists == [], "a player started after the page left it"


def test_a_failing_server_on_load_keeps_the_session(page: Page) -> None:
    """Only a 401 signs out: a 503 from /auth/me on load says so, keeps the token, retries."""
    sign_up(page)
    token = page.evaluate("sessionStorage.getItem('hlsforge.token')")
    assert token
    page.route("**/api/v1/auth/me", lambda route: route.fulfill(
        status=503, json={"detail": "the database is unavailable"}))  # fmt: skip
    page.reload()
    expect(page.get_by_test_id("live-status")).to_have_text(
        "Could not load your account (the database is unavailable); trying again in 2 s…"
    )
    expect(page.get_by_test_id("auth-view")).to_be_hidden()
    expect(page.get_by_test_id("sign-out")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('hlsforge.token')") == token
    page.unroute("**/api/v1/auth/me")
    expect(page.get_by_test_id("library-view")).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("session-user")).to_have_text("Web <b>Tester</b>")
    expect(page.get_by_test_id("live-status")).to_be_hidden()

    page.route("**/api/v1/auth/me", lambda route: route.fulfill(
        status=401, json={"detail": "the token has expired"}))  # fmt: skip
    page.reload()  # a 401 does sign out
    expect(page.get_by_test_id("auth-view")).to_be_visible()
    expect(page.get_by_test_id("auth-error")).to_have_text("Your session has ended; sign in again.")
    assert page.evaluate("sessionStorage.getItem('hlsforge.token')") is None


def test_a_file_that_is_not_a_video_shows_the_reason(page: Page, tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(b"these are my notes, not a video\n" * 64)
    sign_up(page)

    upload(page, notes, "Not a video")
    expect(page.get_by_test_id("upload-error")).to_have_text(f"The file was rejected: {NOT_MEDIA}")
    item = page.get_by_test_id("video-item").filter(has_text="Not a video")
    expect(item).to_have_attribute("data-phase", "failed")
    expect(item.get_by_test_id("video-phase")).to_have_text("Failed")
    expect(item.get_by_test_id("video-error")).to_have_text(NOT_MEDIA)
    expect(item.get_by_test_id("play")).to_be_hidden()
    expect(page.get_by_test_id("upload-retry")).to_be_hidden()


def test_a_large_file_goes_up_in_parts_and_resumes_where_it_stopped(
    page: Page, tmp_path: Path
) -> None:
    """Above the multipart threshold (100 MiB by default) the page PUTs parts; part 2 fails
    until the page gives up, and "Resume upload" sends only what storage does not have. The
    parts are assembled but completing the video fails: resuming then only completes it."""
    big = tmp_path / "big.mp4"
    with big.open("wb") as out:  # not media either, so the API rejects it in the end
        out.write(b"not a video\n")
        out.truncate(MULTIPART_THRESHOLD + 1)
    sign_up(page)
    part_two = re.compile(r"[?&]partNumber=2(&|$)")
    page.route(lambda url: bool(part_two.search(url)), lambda route: route.abort())
    finished: list[int] = []  # part numbers whose PUT succeeded

    def on_finished(request: Request) -> None:
        number = re.search(r"[?&]partNumber=(\d+)", request.url)
        response = request.response()
        if request.method == "PUT" and number and response and response.ok:
            finished.append(int(number[1]))

    page.on("requestfinished", on_finished)
    assembled: list[str] = []  # the POSTs that assemble the parts
    page.on("request", lambda request: assembled.append(request.url)
            if request.url.endswith("/upload/complete") else None)  # fmt: skip
    complete = re.compile(r"/api/v1/videos/[0-9a-f]{24}/complete$")
    # On loopback a part can go up between two progress events: slow the upload so each
    # part's progress shows (16 MiB parts, about a third of a second each).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": 48 * 1024 * 1024,  # bytes per second
    })  # fmt: skip

    upload(page, big, "Big upload")
    expect(page.get_by_test_id("upload-error")).to_contain_text(
        "parts arrived; resume to send the rest", timeout=60_000
    )
    resume = page.get_by_test_id("upload-retry")
    expect(resume).to_have_text("Resume upload")
    assert 2 not in finished
    page.unroute_all()
    page.route(complete, lambda route: route.abort())  # the video's complete cannot get through
    resume.click()
    expect(page.get_by_test_id("upload-error")).to_have_text(
        "Cannot reach the server. Check your connection and try again.", timeout=60_000
    )
    assert len(assembled) == 1, assembled
    expect(resume).to_have_text("Resume upload")
    page.unroute_all()
    puts = len(finished)
    resume.click()
    expect(page.get_by_test_id("upload-error")).to_have_text(
        f"The file was rejected: {NOT_MEDIA}", timeout=60_000
    )
    assert len(finished) == puts, "a part went up again after the parts were assembled"
    assert len(assembled) == 1, assembled
    assert sorted(set(finished)) == list(range(1, 8)), finished  # 7 parts of 16 MiB
    assert len(finished) == len(set(finished)), f"a part went up twice: {finished}"
    progress: list[dict[str, Any]] = page.evaluate("window.__progress")
    assert between(values(progress, "part-progress")), "no per-part progress"
    assert between(values(progress, "upload-progress")), "no overall upload progress"
