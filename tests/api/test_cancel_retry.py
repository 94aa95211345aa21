"""Cancel, retry and delete through the API, with the real operator in Kopf's thread and the
emulated cluster. Rendition "workers" are JobRunner hooks: the first 1080p Job runs until it is
stopped (tests/operated.py), so each request arrives while a rung is encoding."""

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio
from conftest import ClipFactory
from helpers import Api, Signup, create_and_upload
from hlsforge_dev import VIDEOTRANSCODES, EmulatedCluster
from operated import held_1080p, operated, wait_encoding
from pymongo.database import Database

NAMESPACE = "default"


@pytest.fixture
def release() -> threading.Event:
    return threading.Event()


@pytest.fixture
def seen() -> dict[str, bool]:
    return {}


@pytest.fixture
def operator(
    api: Api, cluster: EmulatedCluster, s3: Any, release: threading.Event, seen: dict[str, bool],
    operator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:  # fmt: skip
    """(Needs `operator_env` itself: a usefixtures mark on the test would set it up after.)"""
    with operated(api, cluster, held_1080p(s3, release, seen), monkeypatch):
        yield
        release.set()  # let a held worker end


def connect(api: Api, token: str) -> socketio.SimpleClient:
    sock = socketio.SimpleClient()
    sock.connect(api.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return sock


def start_encoding(client: httpx.Client, clip: ClipFactory, cluster: EmulatedCluster) -> str:
    """A video uploaded and completed, its 1080p rung encoding (held): its id."""
    video_id = create_and_upload(client, clip("trip.mp4", seconds=1))
    assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
    wait_encoding(cluster, video_id)
    return video_id


def until(sock: socketio.SimpleClient, event: str) -> dict[str, Any]:
    """Events until `event`; its payload."""
    while True:
        name, payload = sock.receive(timeout=60)
        if name == event:
            return dict(payload)


@pytest.mark.usefixtures("operator")
def test_cancel_stops_the_transcode_and_retry_finishes_it(
    api: Api, signup: Signup, clip: ClipFactory, cluster: EmulatedCluster, s3: Any
) -> None:
    token = signup()
    sock = connect(api, token)
    try:
        with api.client(token) as client:
            video_id = start_encoding(client, clip, cluster)
            cancel = client.post(f"/api/v1/videos/{video_id}/cancel")
            assert cancel.status_code == 202, cancel.text
            assert cancel.json()["id"] == video_id
            event = until(sock, "transcode.cancelled")
            assert (event["videoId"], event["phase"]) == (video_id, "Cancelled")
            assert event["message"] == "cancelled on request"
            video = client.get(f"/api/v1/videos/{video_id}").json()
            assert (video["phase"], video["error"]) == ("cancelled", "cancelled on request")
            assert {r["name"]: r["phase"] for r in video["renditions"]}["1080p"] == "Cancelled"
            key = cluster.get(VIDEOTRANSCODES, NAMESPACE, f"video-{video_id}")["spec"]["source"]
            s3.head_object(Bucket=key["bucket"], Key=key["key"])  # the source is kept
            again = client.post(f"/api/v1/videos/{video_id}/cancel")
            assert again.status_code == 409
            assert again.json()["detail"] == "the transcode has already ended (cancelled)"

            retry = client.post(f"/api/v1/videos/{video_id}/retry")
            assert retry.status_code == 202, retry.text
            assert until(sock, "transcode.succeeded")["videoId"] == video_id
            video = client.get(f"/api/v1/videos/{video_id}").json()
            assert (video["phase"], video["error"]) == ("succeeded", None)
            refused = client.post(f"/api/v1/videos/{video_id}/retry")
            assert refused.status_code == 409
            assert "has succeeded" in refused.json()["detail"]
            assert client.post(f"/api/v1/videos/{video_id}/cancel").status_code == 409
    finally:
        sock.disconnect()


@pytest.mark.usefixtures("operator")
def test_deleting_a_video_while_a_rung_encodes_leaves_its_outputs_to_the_operator(
    api: Api, signup: Signup, clip: ClipFactory, cluster: EmulatedCluster, s3: Any,
    release: threading.Event, seen: dict[str, bool],
) -> None:  # fmt: skip
    """The API removes the resource, the source and the record; the operator's finalizer
    stops the Jobs and only then removes the outputs, so a late upload is removed too."""
    token = signup()
    sock = connect(api, token)
    try:
        with api.client(token) as client:
            video_id = start_encoding(client, clip, cluster)
            source = cluster.get(VIDEOTRANSCODES, NAMESPACE, f"video-{video_id}")["spec"]["source"]
            assert client.delete(f"/api/v1/videos/{video_id}").status_code == 204
            assert client.get(f"/api/v1/videos/{video_id}").status_code == 404
            # The 1080p worker is still stopping: the outputs must all be there.
            prefix = f"videos/{video_id}/"
            assert s3.list_objects_v2(Bucket="media", Prefix=prefix)["KeyCount"] == 1
            release.set()
            event = until(sock, "transcode.cancelled")  # the owner is told
            assert (event["videoId"], event["phase"]) == (video_id, "Cancelled")
            cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, f"video-{video_id}", lambda b: b is None)
    finally:
        sock.disconnect()
    assert seen == {"poster": True}  # nothing was removed before the worker had stopped
    assert s3.list_objects_v2(Bucket="media", Prefix=prefix)["KeyCount"] == 0  # nor left after
    assert "Contents" not in s3.list_objects_v2(Bucket=source["bucket"], Prefix=source["key"])


def test_cancel_and_retry_are_the_owners_and_refused_when_pointless(
    api: Api, signup: Signup, clip: ClipFactory, cluster: EmulatedCluster,
    database: Database[dict[str, Any]],
) -> None:  # fmt: skip
    owner, stranger = signup(), signup()
    with api.client(owner) as client, api.client(stranger) as other:
        video_id = create_and_upload(client, clip("a.mp4", seconds=1))
        for action in ("cancel", "retry"):
            assert other.post(f"/api/v1/videos/{video_id}/{action}").status_code == 404
            missing = client.post(f"/api/v1/videos/{'0' * 24}/{action}")
            assert missing.status_code == 404
            awaiting = client.post(f"/api/v1/videos/{video_id}/{action}")
            assert awaiting.status_code == 409, awaiting.text
        assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
        assert client.post(f"/api/v1/videos/{video_id}/retry").status_code == 409  # not ended
        assert client.post(f"/api/v1/videos/{video_id}/cancel").status_code == 202
        name = f"video-{video_id}"
        annotations = cluster.get(VIDEOTRANSCODES, NAMESPACE, name)["metadata"]["annotations"]
        assert annotations["hlsforge.dev/cancel"]

        # What the operator would write; a retry takes the cancel away in the same patch.
        database["videos"].update_one(
            {"_id": video_id}, {"$set": {"phase": "cancelled", "transcodeSeq": 1}}
        )
        assert client.post(f"/api/v1/videos/{video_id}/retry").status_code == 202
        annotations = cluster.get(VIDEOTRANSCODES, NAMESPACE, name)["metadata"]["annotations"]
        assert "hlsforge.dev/cancel" not in annotations
        assert annotations["hlsforge.dev/retry"]

        # A resource deleted behind the API's back is created again by a retry.
        cluster.delete(VIDEOTRANSCODES, NAMESPACE, name)
        assert client.post(f"/api/v1/videos/{video_id}/retry").status_code == 202
        assert cluster.find(VIDEOTRANSCODES, NAMESPACE, name) is not None

        # An upload the API refused never had a transcode: nothing to retry.
        rejected = client.post("/api/v1/videos", json={
            "title": "t", "filename": "b.mp4", "contentType": "video/mp4", "size": 5,
        }).json()  # fmt: skip
        upload = rejected["upload"]
        httpx.post(upload["url"], data=upload["fields"],
                   files={"file": ("b.mp4", b"hello", "video/mp4")})  # fmt: skip
        assert client.post(f"/api/v1/videos/{rejected['video']['id']}/complete").status_code == 422
        refused = client.post(f"/api/v1/videos/{rejected['video']['id']}/retry")
        assert refused.status_code == 409
        assert "create a new video" in refused.json()["detail"]


def test_cancel_and_retry_are_in_the_openapi_document(api: Api) -> None:
    with api.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    for action in ("cancel", "retry"):
        operation = paths[f"/api/v1/videos/{{video_id}}/{action}"]["post"]
        assert {"202", "401", "404", "409"} <= set(operation["responses"])
