"""Two API replicas on one Redis (issue 13): a live event that reaches either replica goes to
the owner's clients on both, and to nobody else; with Redis down, HTTP goes on."""

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import socketio
from conftest import ClipFactory
from helpers import Api, Signup, create_and_upload, send_like_the_operator, serve
from hlsforge_dev.loopback import redis_server
from pydantic import SecretStr

from transcode_api.main import create_app
from transcode_api.settings import ApiSettings


def connect(api: Api, token: str) -> socketio.SimpleClient:
    client = socketio.SimpleClient()
    client.connect(api.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def replicas(api: Api, redis_url: str) -> Iterator[tuple[Api, Api]]:
    """Two API processes' worth of app (each its own Socket.IO server and Redis manager) on
    one MongoDB and one Redis; the `api` fixture's app is replaced by replica A."""
    settings = api.settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        yield Api(first, settings), Api(second, settings)


def me(api: Api, token: str) -> str:
    with api.client(token) as client:
        user_id: str = client.get("/api/v1/auth/me").json()["id"]
    return user_id


def test_an_event_through_one_replica_reaches_the_owner_on_the_other_only(
    replicas: tuple[Api, Api], signup: Signup, clip: ClipFactory
) -> None:
    a, b = replicas
    owner_token, stranger_token = signup(), signup()
    with a.client(owner_token) as client:
        video_id = create_and_upload(client, clip())
    with ExitStack() as open_clients:
        owner_on_a = connect(a, owner_token)
        owner_on_b = connect(b, owner_token)
        stranger_on_b = connect(b, stranger_token)
        for client in (owner_on_a, owner_on_b, stranger_on_b):
            open_clients.callback(client.disconnect)
        # Ownership holds on every replica: both read the same MongoDB.
        assert owner_on_a.call("subscribe", {"videoId": video_id}, timeout=10) == {"ok": True}
        refused = stranger_on_b.call("subscribe", {"videoId": video_id}, timeout=10)
        assert refused == {"ok": False, "error": "video not found"}

        progress: dict[str, Any] = {"videoId": video_id, "owner": me(a, owner_token),
                                    "rendition": "360p", "percent": 41.5}  # fmt: skip
        send_like_the_operator(b, "transcode.progress", progress)  # the operator reached B
        expected = ("transcode.progress", {k: v for k, v in progress.items() if k != "owner"})
        assert tuple(owner_on_a.receive(timeout=10)) == expected  # through Redis
        assert tuple(owner_on_b.receive(timeout=10)) == expected  # B's own client, once
        with pytest.raises(socketio.exceptions.TimeoutError):
            owner_on_b.receive(timeout=1)
        with pytest.raises(socketio.exceptions.TimeoutError):
            stranger_on_b.receive(timeout=1)


def test_with_redis_down_http_goes_on_and_events_cross_replicas_again_when_it_is_back(
    api: Api, signup: Signup, clip: ClipFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server() as url:
        settings: ApiSettings = api.settings.model_copy(update={"redis_url": SecretStr(url)})
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    # Redis is gone before the replicas start, as in an outage.
    with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        a, b = Api(first, settings), Api(second, settings)
        token = signup()
        with a.client(token) as client:
            video_id = create_and_upload(client, clip())  # HTTP goes on
            ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text  # still in the Service
        assert (ready.json()["status"], ready.json()["checks"]["redis"]) == (
            "degraded", "unavailable",
        )  # fmt: skip
        owner_on_a, owner_on_b = connect(a, token), connect(b, token)
        try:
            assert owner_on_a.call("subscribe", {"videoId": video_id}, timeout=10) == {"ok": True}
            progress = {"videoId": video_id, "owner": me(a, token), "percent": 5.0}
            send_like_the_operator(b, "transcode.progress", progress)
            assert owner_on_b.receive(timeout=10)[0] == "transcode.progress"  # B's own client
            with pytest.raises(socketio.exceptions.TimeoutError):
                owner_on_a.receive(timeout=1)  # not across replicas
            assert "Cannot publish to redis" in caplog.text  # the log says why

            with redis_server(port):  # back: events cross again, without a restart
                with a.client(token) as client:
                    assert client.get("/readyz").json()["status"] == "ok"
                deadline = time.monotonic() + 40  # the listener retries 1, 2, 4, ... s apart
                while True:
                    send_like_the_operator(b, "transcode.progress", progress)
                    try:
                        event, _ = owner_on_a.receive(timeout=1)
                    except socketio.exceptions.TimeoutError:
                        assert time.monotonic() < deadline, "no event since Redis came back"
                    else:
                        assert event == "transcode.progress"
                        break
        finally:
            owner_on_a.disconnect()
            owner_on_b.disconnect()


def test_a_redis_that_refuses_the_password_degrades_readiness_and_the_password_stays_secret(
    api: Api, signup: Signup, caplog: pytest.LogCaptureFixture
) -> None:
    right, wrong = "right-Redis-passw0rd", "wrong-Redis-passw0rd"
    with redis_server(password=right) as url:
        port = url.rsplit(":", 1)[1]
        for password, status in ((wrong, "degraded"), (right, "ok")):
            given = SecretStr(f"redis://:{password}@127.0.0.1:{port}")
            settings = api.settings.model_copy(update={"redis_url": given})
            with serve(create_app(settings)) as replica:
                one = Api(replica, settings)
                with one.client(signup()) as client:
                    assert client.get("/api/v1/videos").status_code == 200  # HTTP goes on
                    ready = client.get("/readyz")
                listener = connect(one, signup())  # Socket.IO still accepts clients
                listener.disconnect()
            assert ready.status_code == 200
            assert ready.json()["status"] == status, ready.text
            assert password not in ready.text
    assert "invalid username-password pair" in caplog.text  # the log says why
    assert wrong not in caplog.text
    assert right not in caplog.text
