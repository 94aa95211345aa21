"""The web app's Cancel and Retry buttons in headless Chromium, against the API with the real
operator (tests/operated.py: the first 1080p Job encodes until it is stopped, so Cancel is
clicked while a rendition really runs; the retried one succeeds at once)."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Api, make_clip
from hlsforge_dev import EmulatedCluster
from operated import held_1080p, operated, wait_encoding
from playwright.sync_api import Page, expect


@pytest.fixture
def page(
    open_page: Callable[..., Page], api: Api, cluster: EmulatedCluster, s3: Any,
    operator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Page]:  # fmt: skip
    """The web app of an API whose operator runs."""
    release = threading.Event()
    with operated(api, cluster, held_1080p(s3, release, {}), monkeypatch):
        yield open_page(api.url, timeout_ms=30_000)
        release.set()


def test_cancel_a_running_transcode_then_retry_it(
    page: Page, cluster: EmulatedCluster, tmp_path: Path
) -> None:
    page.goto("/")
    page.get_by_test_id("auth-email").fill("buttons@example.com")
    page.get_by_test_id("auth-password").fill("a long enough password")
    page.get_by_test_id("sign-up").click()
    expect(page.get_by_test_id("videos-empty")).to_be_visible()  # live connection is up
    page.get_by_test_id("upload-title").fill("Long film")
    page.get_by_test_id("file-input").set_input_files(make_clip(tmp_path / "a.mp4", seconds=1))
    page.get_by_test_id("upload-button").click()

    item = page.get_by_test_id("video-item").filter(has_text="Long film")
    top = item.get_by_test_id("rendition").filter(has_text="1080p")
    expect(top).to_be_visible()
    video_id = item.get_attribute("data-video-id")
    assert video_id is not None
    wait_encoding(cluster, video_id)  # (the held worker prints no progress for the page)
    expect(item.get_by_test_id("retry")).to_be_hidden()
    item.get_by_test_id("cancel").click()
    expect(item).to_have_attribute("data-phase", "cancelled")
    expect(item.get_by_test_id("video-phase")).to_have_text("Cancelled")
    expect(item.get_by_test_id("video-error")).to_have_text("cancelled on request")
    expect(top).to_have_attribute("data-phase", "cancelled")
    expect(top.get_by_test_id("rendition-percent")).to_have_text("cancelled")
    expect(item.get_by_test_id("cancel")).to_be_hidden()

    item.get_by_test_id("retry").click()
    expect(item).to_have_attribute("data-phase", "succeeded")
    expect(item.get_by_test_id("play")).to_be_visible()
    expect(item.get_by_test_id("retry")).to_be_hidden()
    expect(item.get_by_test_id("video-error")).to_be_hidden()
    expect(top.get_by_test_id("rendition-percent")).to_have_text("done")
