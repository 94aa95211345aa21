"""The browser the web tests share: the system Chromium, headless, driven by Playwright.

`open_page(base_url, ...)` opens a page in a fresh browser context; the test fails if a script
in it throws or logs an error. A module that plays sound on its own (no muted autoplay) asks
for it by overriding `autoplay` to return True.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"


@pytest.fixture(scope="module")
def autoplay() -> bool:
    """Whether pages may play sound without a user gesture (a module overrides this)."""
    return False


@pytest.fixture(scope="module")
def browser(autoplay: bool) -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs it (apt chromium)"
    args = [*CHROMIUM_ARGS, AUTOPLAY] if autoplay else CHROMIUM_ARGS
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """`open_page(base_url, timeout_ms=..., init_scripts=(...), **context_options)`: a page in
    a fresh context, each init script run before the page's own; at the end of the test the
    contexts close and any script error (a throw, or a console error other than a failed
    request, which pages report themselves) fails it."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def open_(
        base_url: str | None = None,
        *,
        timeout_ms: float = 20_000,
        init_scripts: tuple[str, ...] = (),
        **options: Any,
    ) -> Page:
        context = browser.new_context(base_url=base_url, **options)
        contexts.append(context)
        context.set_default_timeout(timeout_ms)
        for script in init_scripts:
            context.add_init_script(script)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", on_console)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, errors
