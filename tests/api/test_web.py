"""The web app's files as the API serves them (the browser test is tests/web)."""

import contextlib
import json
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from helpers import Api, serve

from transcode_api.settings import ApiSettings
from transcode_api.web import (
    CONTRACT,
    VENDOR,
    WEB_DIR,
    mount_web,
    page_headers,
    storage_origins,
)
from transcode_api.web_contract import GLOBAL, contract_script, web_facts
from videotranscode import HLS_PLAYLIST_TYPE, SOURCE_CONTENT_TYPES, TranscodeEvent, VideoPhase


@pytest.fixture
def vendor_dir(tmp_path: Path) -> Path:
    for name, relative in VENDOR.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True)
        path.write_text(f"/* {name} */")
    return tmp_path


@contextlib.contextmanager
def web_app(vendor_dir: Path) -> Iterator[httpx.Client]:
    """An app with one route of its own and the web app, served by uvicorn."""
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    mount_web(app, storage=["http://s3.example:9000"], vendor_dir=vendor_dir)
    with serve(app) as url, httpx.Client(base_url=url) as client:
        yield client


def test_the_page_its_files_and_the_vendor_scripts_are_served(vendor_dir: Path) -> None:
    with web_app(vendor_dir) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        for path, media_type in (("/app.js", "text/javascript"), ("/app.css", "text/css"),
                                 (CONTRACT, "text/javascript")):  # fmt: skip
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(media_type)
        for name in VENDOR:
            response = client.get(f"/vendor/{name}")
            assert response.status_code == 200
            assert response.text == f"/* {name} */"
        assert client.get("/healthz").json() == {"status": "ok"}


def test_nothing_else_is_served(vendor_dir: Path) -> None:
    paths = ["/package.json", "/package-lock.json", "/node_modules/hls.js/dist/hls.min.js",
             "/vendor/hls.js", "/vendor/..%2Fpackage.json", "/index.html", "/web.py"]  # fmt: skip
    with web_app(vendor_dir) as client:
        assert {path: client.get(path).status_code for path in paths} == dict.fromkeys(paths, 404)


def test_a_missing_vendor_script_is_a_clear_404(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="transcode_api.web"),
        web_app(tmp_path / "nothing-here") as client,
    ):
        assert "run `make setup`" in caplog.text
        response = client.get("/vendor/hls.min.js")
        assert response.status_code == 404
        assert "hls.min.js is not installed" in response.json()["detail"]
        assert client.get("/").status_code == 200  # the rest still works


def test_the_page_loads_what_is_served_and_never_writes_html() -> None:
    page = (WEB_DIR / "index.html").read_text()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == ["/vendor/socket.io.min.js", "/vendor/hls.min.js", CONTRACT, "/app.js"]
    script = (WEB_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"app.js uses {sink}: set textContent instead"


def test_npm_packages_are_pinned_exactly_by_the_lock_file() -> None:
    wanted = json.loads((WEB_DIR / "package.json").read_text())["dependencies"]
    assert set(wanted) == {"hls.js", "socket.io-client"}
    locked = json.loads((WEB_DIR / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not exact"
        assert locked[f"node_modules/{name}"]["version"] == version
        assert locked[f"node_modules/{name}"]["integrity"].startswith("sha512-")


def test_the_api_serves_the_app_after_its_own_routes(api: Api) -> None:
    with api.client() as client:
        assert "hlsforge" in client.get("/").text
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/docs").status_code == 200
        assert "/" not in client.get("/openapi.json").json()["paths"]
        assert client.get("/api/v1/nothing").status_code == 404
        handshake = client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert handshake.status_code == 200
        assert '"sid"' in handshake.text  # Socket.IO answers there, not the web app
        for name in VENDOR:  # `make setup` ran npm ci
            assert client.get(f"/vendor/{name}").status_code == 200, name


def test_the_page_may_reach_only_itself_and_storage(vendor_dir: Path) -> None:
    with web_app(vendor_dir) as client:
        csp = client.get("/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self' http://s3.example:9000"
    assert directives["media-src"] == "'self' blob: http://s3.example:9000"


def test_storage_origins_follow_the_settings() -> None:
    base = ApiSettings(dev_mode=True)
    assert storage_origins(base) == ["https://*.amazonaws.com"]
    minio = base.model_copy(
        update={
            "s3_endpoint_url": "http://minio:9000/",
            "s3_public_endpoint_url": "http://localhost:9000/x",
        }
    )
    cdn = minio.model_copy(update={"public_base_url": "https://cdn.example/videos"})
    assert storage_origins(minio) == ["http://localhost:9000"]
    assert storage_origins(cdn) == ["http://localhost:9000", "https://cdn.example"]
    assert "https://cdn.example" in page_headers(storage_origins(cdn))["Content-Security-Policy"]


def test_the_contract_script_is_served_like_the_page(vendor_dir: Path) -> None:
    with web_app(vendor_dir) as client:
        page, script = client.get("/"), client.get(CONTRACT)
    assert script.text == contract_script(web_facts())
    for header in ("cache-control", "content-security-policy", "x-content-type-options"):
        assert script.headers[header] == page.headers[header]


def test_the_web_app_gets_the_contracts_facts() -> None:
    facts = json.loads(json.dumps(web_facts()))  # as the browser reads them
    assert facts["phases"] == [phase.value for phase in VideoPhase]
    assert facts["finished"] == ["succeeded", "failed", "cancelled"]
    assert facts["ended"] == ["failed", "cancelled"]
    assert facts["beforeTranscoding"] == ["awaiting_upload", "queued", "pending", "probing"]
    assert facts["playable"] == ["succeeded"]
    assert facts["playableOnceStarted"] == [phase for phase in VideoPhase if not phase.ended]
    assert facts["events"] == {event.name.lower(): event.value for event in TranscodeEvent}
    assert facts["endingEvents"] == {"transcode.succeeded": "succeeded",
                                     "transcode.failed": "failed",
                                     "transcode.cancelled": "cancelled"}  # fmt: skip
    assert facts["sourceContentTypes"] == SOURCE_CONTENT_TYPES
    assert facts["hlsPlaylistType"] == HLS_PLAYLIST_TYPE


def test_the_contract_script_leaves_the_facts_for_the_app() -> None:
    # Node.js comes with `make setup` (the web app's npm packages), so it is always there.
    script = contract_script(web_facts())
    probe = f"globalThis.window = globalThis;\n{script}\nconsole.log(JSON.stringify({GLOBAL}));"
    node = subprocess.run(["node", "-e", probe], capture_output=True, text=True, check=True)
    assert json.loads(node.stdout) == json.loads(json.dumps(web_facts()))


def test_the_app_keeps_no_copy_of_the_contract() -> None:
    script = (WEB_DIR / "app.js").read_text()
    facts = [*TranscodeEvent, *SOURCE_CONTENT_TYPES.values(), HLS_PLAYLIST_TYPE]
    assert [fact for fact in facts if f'"{fact}"' in script] == []


def test_the_phases_the_app_names_are_the_contracts() -> None:
    """The app compares a video's phase with a few by name, and labels two: each one must be a
    phase of the contract, or the comparison silently never matches."""
    script = (WEB_DIR / "app.js").read_text()
    compared = re.findall(r'video\.phase [!=]== "(\w+)"|entry\.video, phase: "(\w+)"', script)
    [labels] = re.findall(r"const LABELS = \{([^}]*)\}", script)
    named = {name for pair in compared for name in pair if name} | set(
        re.findall(r"(\w+):", labels)
    )
    assert len(named) >= 4, named  # the patterns still find them
    assert named <= set(VideoPhase), named - set(VideoPhase)
