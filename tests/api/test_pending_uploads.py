"""At most `MAX_PENDING_UPLOADS` videos per user await their upload, even under parallel
requests, and a video that stops awaiting its upload (completed, failed, aborted, deleted)
frees its place at once."""

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
from helpers import Api, serve

from transcode_api.main import create_app
from transcode_api.settings import ApiSettings

VIDEOS = "/api/v1/videos"
MiB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(32)
SMALL = {"title": "t", "filename": "a.mp4", "contentType": "video/mp4", "size": 1000}


@contextlib.contextmanager
def api_with_limit(settings: ApiSettings, limit: int) -> Iterator[Api]:
    limited = settings.model_copy(update={"max_pending_uploads": limit})
    with serve(create_app(limited)) as url:
        yield Api(url, limited)


def sign_up(api: Api) -> str:
    account = {"email": "pending@example.com", "password": "long enough password"}
    with api.client() as client:
        assert client.post("/api/v1/auth/register", json=account).status_code == 201
        token: str = client.post("/api/v1/auth/login", json=account).json()["access_token"]
    return token


def test_parallel_creates_never_exceed_the_limit(api_settings: ApiSettings) -> None:
    with api_with_limit(api_settings, 3) as limited:
        parallel_creates(limited)


def parallel_creates(limited: Api) -> None:
    token = sign_up(limited)
    requests = 20
    ready = threading.Barrier(requests)
    statuses: list[int] = []

    def create() -> None:
        with limited.client(token) as client:
            client.get("/healthz")  # connected before the barrier, so the POSTs start together
            ready.wait()
            statuses.append(client.post(VIDEOS, json=SMALL).status_code)

    threads = [threading.Thread(target=create) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(statuses) == {201: 3, 429: requests - 3}
    with limited.client(token) as client:
        assert client.get(VIDEOS, params={"phase": "awaiting_upload"}).json()["total"] == 3


def new(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    created = client.post(VIDEOS, json=SMALL | fields)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def upload(ticket: dict[str, Any], data: bytes) -> None:
    response = httpx.post(ticket["url"], data=ticket["fields"],
                          files={"file": ("a.mp4", data, "video/mp4")})  # fmt: skip
    assert response.status_code in (200, 204), response.text


def test_every_way_out_of_awaiting_upload_frees_a_place(api_settings: ApiSettings) -> None:
    with api_with_limit(api_settings, 2) as limited, limited.client(sign_up(limited)) as client:
        posted = new(client, size=len(MP4_HEAD) + 1000)
        multipart = new(client, size=6 * MiB)
        assert client.post(VIDEOS, json=SMALL).status_code == 429

        aborted = client.delete(f"{VIDEOS}/{multipart['video']['id']}/upload")
        assert aborted.status_code == 204
        not_media = new(client)
        assert client.post(VIDEOS, json=SMALL).status_code == 429

        upload(not_media["upload"], b"<html>" + bytes(994))
        failed = client.post(f"{VIDEOS}/{not_media['video']['id']}/complete")
        assert failed.status_code == 422
        deleted = new(client)
        assert client.post(VIDEOS, json=SMALL).status_code == 429

        assert client.delete(f"{VIDEOS}/{deleted['video']['id']}").status_code == 204
        new(client)
        assert client.post(VIDEOS, json=SMALL).status_code == 429

        upload(posted["upload"], MP4_HEAD + bytes(1000))
        assert client.post(f"{VIDEOS}/{posted['video']['id']}/complete").status_code == 202
        new(client)
        assert client.post(VIDEOS, json=SMALL).status_code == 429
        awaiting = client.get(VIDEOS, params={"phase": "awaiting_upload"}).json()
    assert awaiting["total"] == 2
