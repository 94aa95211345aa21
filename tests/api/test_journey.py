"""The whole client journey through a real uvicorn: sign up, upload straight to S3, start the
transcode, receive live progress over Socket.IO, and play the result through signed URLs."""

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest
import socketio
from conftest import ClipFactory
from helpers import Api, Signup, create_and_upload, run_worker
from hlsforge_dev import VIDEOTRANSCODES, EmulatedCluster

from transcode_operator.publish import VideoStore, video_update
from videotranscode import VideoTranscodeStatus


def connect(api: Api, token: str, namespace: str = "/") -> socketio.SimpleClient:
    client = socketio.SimpleClient()
    client.connect(api.url, auth={"token": token}, transports=["websocket"], namespace=namespace,
                   wait_timeout=10)  # fmt: skip
    return client


def worker_env(s3_endpoint: str) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def finish_like_the_operator(api: Api, video_id: str, source: Path, s3_endpoint: str) -> None:
    """What the operator does on success: the HLS tree in S3 (here the real worker's `ladder`)
    and the `videos` document updated through the operator's own writer."""
    prefix = f"videos/{video_id}"
    result = run_worker("ladder", str(source), f"s3://media/{prefix}", "--renditions",
                        "180:180:200k,360p", env=worker_env(s3_endpoint))  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = VideoTranscodeStatus.model_validate({
        "phase": "Succeeded", "progress": 100,
        "renditions": [{"name": "180", "phase": "Succeeded", "progress": 100},
                       {"name": "360p", "phase": "Succeeded", "progress": 100}],
        "playback": {"masterPlaylist": f"{prefix}/master.m3u8",
                     "thumbnail": f"{prefix}/poster.jpg"},
    })  # fmt: skip
    store = VideoStore(api.settings.mongodb_uri.get_secret_value(), api.settings.mongodb_database)
    query, update = video_update(namespace="default", name=f"video-{video_id}", status=status,
                                 seq=1)  # fmt: skip
    asyncio.run(store.publish(video_id, query, update))
    store.close()


def test_register_login_and_me(api: Api) -> None:
    with api.client() as client:
        account = {"email": "Ada@Example.com", "password": "s3cret-enough"}
        registered = client.post("/api/v1/auth/register", json=account)
        assert registered.status_code == 201, registered.text
        assert registered.json()["email"] == "ada@example.com"
        assert "password" not in registered.text
        assert "Hash" not in registered.text
        # The OAuth2 password form, as sent by the OpenAPI page's "Authorize" button
        form = {"username": "ada@example.com", "password": account["password"]}
        login = client.post("/api/v1/auth/login", data=form)
        assert login.status_code == 200, login.text
        token = login.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == api.settings.jwt_expiry_minutes * 60
        me = client.get("/api/v1/auth/me",
                        headers={"Authorization": f"Bearer {token['access_token']}"})  # fmt: skip
    assert me.status_code == 200
    assert me.json()["id"] == registered.json()["id"]


def test_the_whole_journey(
    api: Api, signup: Signup, clip: ClipFactory, cluster: EmulatedCluster, s3: Any,
    s3_endpoint: str,
) -> None:  # fmt: skip
    token = signup()
    source = clip("holiday.mp4", size="640x360", seconds=2)
    with api.client(token) as client:
        me = client.get("/api/v1/auth/me").json()
        video_id = create_and_upload(client, source)

        completed = client.post(f"/api/v1/videos/{video_id}/complete")
        assert completed.status_code == 202, completed.text
        assert completed.json()["phase"] == "queued"
        again = client.post(f"/api/v1/videos/{video_id}/complete")
        assert again.status_code == 202
        assert again.json()["phase"] == "queued"

        resources = cluster.list(VIDEOTRANSCODES, "default")
        assert [r["metadata"]["name"] for r in resources] == [f"video-{video_id}"]
        spec = resources[0]["spec"]
        assert spec["source"] == {"bucket": "uploads",
                                  "key": f"uploads/{me['id']}/{video_id}/source.mp4"}  # fmt: skip
        assert spec["output"] == {"bucket": "media", "prefix": f"videos/{video_id}",
                                  "cleanupOnDelete": True}  # fmt: skip
        assert (spec["videoId"], spec["owner"]) == (video_id, me["id"])
        assert resources[0]["metadata"]["labels"]["hlsforge.dev/owner"] == me["id"]

        # Live progress: a fake operator on /internal, the owner's browser on /
        browser = connect(api, token)
        stranger = connect(api, signup())
        assert api.settings.service_token is not None
        operator = connect(api, api.settings.service_token.get_secret_value(), "/internal")
        try:
            assert browser.call("subscribe", {"videoId": video_id}, timeout=10) == {"ok": True}
            progress = {"videoId": video_id, "owner": me["id"], "rendition": "360p",
                        "percent": 41.5, "outTimeSeconds": 0.8, "speed": 1.9}  # fmt: skip
            operator.emit("transcode.progress", progress)
            event, payload = browser.receive(timeout=10)
            assert event == "transcode.progress"
            assert payload == {k: v for k, v in progress.items() if k != "owner"}
            with pytest.raises(socketio.exceptions.TimeoutError):
                stranger.receive(timeout=1)
        finally:
            for sock in (browser, stranger, operator):
                sock.disconnect()

        finish_like_the_operator(api, video_id, source, s3_endpoint)
        video = client.get(f"/api/v1/videos/{video_id}").json()
        assert video["phase"] == "succeeded"
        assert [r["name"] for r in video["renditions"]] == ["180", "360p"]

        playback = client.get(f"/api/v1/videos/{video_id}/playback")
        assert playback.status_code == 200, playback.text
        urls = playback.json()
    assert urls["expiresAt"] is not None

    # A player needs no credentials: the master URL carries a token, the rest follows it.
    master_response = httpx.get(urls["masterUrl"])
    assert master_response.status_code == 200
    assert master_response.headers["content-type"] == "application/vnd.apple.mpegurl"
    master = m3u8.loads(master_response.text, uri=urls["masterUrl"])
    assert len(master.playlists) == 2
    variant_url = master.playlists[0].absolute_uri
    assert variant_url.startswith(api.url)
    media = m3u8.loads(httpx.get(variant_url).text)
    assert media.segments
    signed = [media.segment_map[0].uri, *[segment.uri for segment in media.segments]]
    assert all(url.startswith(s3_endpoint) and "X-Amz-Signature=" in url for url in signed)
    for url in signed[:2]:
        fetched = httpx.get(url)
        assert fetched.status_code == 200
        assert fetched.content
    # The sound is an audio rendition (EXT-X-MEDIA): its playlist is served and signed the same.
    [audio] = master.media
    assert audio.absolute_uri.startswith(api.url)
    sound = m3u8.loads(httpx.get(audio.absolute_uri).text)
    signed_sound = [sound.segment_map[0].uri, *[segment.uri for segment in sound.segments]]
    assert all(url.startswith(s3_endpoint) and "X-Amz-Signature=" in url for url in signed_sound)
    assert httpx.get(signed_sound[1]).status_code == 200
    poster = httpx.get(urls["posterUrl"])
    assert poster.status_code == 200
    assert poster.content[:2] == b"\xff\xd8"  # JPEG
